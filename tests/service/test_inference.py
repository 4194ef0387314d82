"""Shared inference with the real default model: cameras are served in turn, none starves, and
several cameras' frames share one call when the model allows it."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from livedroid.detectors import load_detectors
from livedroid.service.inference import SharedInference


@pytest.mark.parametrize("workers, batch", [(1, 1), (2, 1), (1, 4)])
def test_busy_cameras_are_served_in_turn(default_model: Path, workers: int, batch: int) -> None:
    """No camera waits behind another's backlog: while a frame waits, at most one frame of each
    other camera is taken ahead of it, however the threads happen to be scheduled."""
    shared = SharedInference(load_detectors(default_model, workers=workers, threads=1, batch=batch))
    rng = np.random.default_rng(0)
    images = {name: rng.integers(0, 255, (240, 320, 3), np.uint8) for name in ("a", "b", "c")}
    together = threading.Barrier(3)

    def camera(name: str) -> None:  # asks again as soon as answered: always waiting
        detector = shared.for_camera(name)
        together.wait()
        for _ in range(12):
            assert len(detector.detect([images[name]])) == 1

    threads = [threading.Thread(target=camera, args=(name,)) for name in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    shared.close()
    assert shared.served == {"a": 12, "b": 12, "c": 12}
    assert shared.taken == 36 and shared.most_taken_ahead <= len(images) - 1
    if shared.max_batch > 1:
        assert shared.calls < 36  # frames of several cameras went in one call


def test_closing_releases_waiting_cameras(default_model: Path) -> None:
    shared = SharedInference(load_detectors(default_model, workers=1, threads=1))
    shared.close()
    assert len(shared.for_camera("a").detect([np.zeros((64, 64, 3), np.uint8)])[0]) == 0
