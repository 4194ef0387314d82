"""The pipeline's policies with a test detector whose speed we control."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from livedroid.detections import Detections
from livedroid.detectors.base import Detector
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.pipeline import Pipeline, Selection
from livedroid.sinks import JsonLinesSink
from livedroid.sinks.base import Sink
from livedroid.sources.base import Source


class TickingSource(Source):
    """``count`` frames, one every ``interval`` seconds when live, as fast as possible otherwise."""

    def __init__(self, count: int, live: bool, interval: float = 0.0) -> None:
        self.count, self.live, self.interval = count, live, interval
        self.frame_count = None if live else count

    def frames(self):
        for index in range(self.count):
            time.sleep(self.interval)
            yield Frame(np.full((8, 8, 3), index % 256, np.uint8), index, captured_at=time.monotonic())


class SlowDetector(Detector):
    """Finds one box per frame and takes ``seconds`` per call, whatever the batch size."""

    backend = "test"
    labels = {1: "thing"}

    def __init__(self, seconds: float, max_batch: int = 1) -> None:
        self.seconds, self.max_batch = seconds, max_batch
        self.calls: list[int] = []

    def detect(self, images):
        self.calls.append(len(images))
        time.sleep(self.seconds)
        return [
            Detections.from_normalized(np.array([[0.1, 0.1, 0.5, 0.5]]), np.array([0.9]), np.array([1]), 8, 8, self.labels)
            for _ in images
        ]


class JitteryDetector(SlowDetector):
    """Takes a random 0-10 ms per call, so parallel workers finish out of order."""

    def __init__(self, seed: int) -> None:
        super().__init__(0.0)
        self.rng = np.random.default_rng(seed)

    def detect(self, images):
        self.seconds = float(self.rng.uniform(0, 0.01))
        return super().detect(images)


class ListSink(Sink):
    needs_scene = False

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.closed = False

    def write(self, frame, detections, scene) -> None:
        assert len(detections) == 1
        self.indices.append(frame.index)

    def close(self, complete: bool = True) -> None:
        self.closed = True


def run(source, detector, batch=1):
    sink = ListSink()
    summary = Pipeline(source, detector, [sink], Selection(0.5), batch=batch, progress=False).run()
    return summary, sink


def test_a_file_is_processed_completely_and_in_order_however_slow_inference_is() -> None:
    summary, sink = run(TickingSource(30, live=False), SlowDetector(0.005))
    assert sink.indices == list(range(30)) and sink.closed
    assert (summary.frames_read, summary.frames_processed, summary.frames_dropped) == (30, 30, 0)


def test_a_live_source_drops_stale_frames_when_inference_is_slower() -> None:
    summary, sink = run(TickingSource(60, live=True, interval=0.002), SlowDetector(0.02))
    assert summary.frames_read == 60
    assert summary.frames_dropped > 20
    assert summary.frames_processed + summary.frames_dropped == 60
    assert sink.indices == sorted(sink.indices)  # never out of order
    assert sink.indices[-1] == 59  # the newest frame is always processed


def test_batches_fill_up_to_the_model_limit() -> None:
    detector = SlowDetector(0.001, max_batch=4)
    summary, sink = run(TickingSource(20, live=False), detector, batch=8)
    assert max(detector.calls) == 4 and sum(detector.calls) == 20
    assert sink.indices == list(range(20))


def test_stop_finishes_frames_in_flight_and_closes_sinks() -> None:
    source = TickingSource(10**6, live=False)
    sink = ListSink()
    pipeline = Pipeline(source, SlowDetector(0.001), [sink], progress=False)
    threading.Timer(0.2, pipeline.stop).start()
    summary = pipeline.run()
    assert summary.interrupted and sink.closed
    assert summary.frames_processed == len(sink.indices) == summary.frames_read
    assert sink.indices == list(range(len(sink.indices)))


class FailingSink(ListSink):
    def write(self, frame, detections, scene) -> None:
        if frame.index == 5:
            raise UserError("disk full")
        super().write(frame, detections, scene)


def test_a_failed_run_keeps_its_outputs_under_the_partial_name(tmp_path: Path) -> None:
    jsonl = tmp_path / "out.jsonl"
    sinks = [JsonLinesSink(jsonl), FailingSink()]
    with pytest.raises(UserError, match="disk full"):
        Pipeline(TickingSource(50, live=False), SlowDetector(0.001), sinks, progress=False).run()
    assert not jsonl.exists()
    partial = tmp_path / "out.jsonl.partial"
    assert len(partial.read_text().splitlines()) == 6  # frames 0..5 reached the JSON sink first


def test_parallel_detectors_write_every_frame_in_order() -> None:
    detectors = [JitteryDetector(seed) for seed in range(3)]
    sink = ListSink()
    summary = Pipeline(TickingSource(60, live=False), detectors, [sink], progress=False).run()
    assert sink.indices == list(range(60))
    assert summary.frames_processed == 60
    assert all(detector.calls for detector in detectors)  # every worker took part
