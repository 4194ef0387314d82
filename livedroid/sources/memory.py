"""Frames held in memory, replayed as a file or as a live camera at a given rate.

The benchmark uses it to isolate stages from decoding and to simulate a live source; the soak
script uses it for long live runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from fractions import Fraction

import numpy as np

from livedroid.frames import Frame
from livedroid.sources.base import Source


class MemorySource(Source):
    """Replays ``images``: as fast as consumed, or (``live``) paced at ``fps`` like a camera,
    looping until ``seconds`` have passed. Live frames are stamped with their due capture time."""

    def __init__(self, images: Sequence[np.ndarray], fps: float, *, live: bool = False, seconds: float | None = None) -> None:
        self.images = images
        self.fps = fps
        self.live = live
        self.seconds = seconds
        self.description = f"{len(images)} frames in memory" + (f", live at {fps:g} fps" if live else "")
        self.time_base = Fraction(1, 1_000_000) if live else 1 / Fraction(fps).limit_denominator(100_000)
        total = round(seconds * fps) if live and seconds else len(images)
        self.frame_count = None if live else total
        self._total = total

    def frames(self) -> Iterator[Frame]:
        start = time.monotonic()
        for index in range(self._total):
            image = self.images[index % len(self.images)].copy()  # annotation draws in place
            if not self.live:
                yield Frame(image, index, pts=index, time_base=self.time_base, captured_at=time.monotonic())
                continue
            due = start + index / self.fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield Frame(image, index, pts=round((due - start) * 1_000_000), time_base=self.time_base, captured_at=due)
