"""The pipeline's policies with a test detector whose speed we control."""

import json
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


# --- failure injection: any stage failing at frame k ends the run promptly, loudly, and in order

FAIL_AT = 7
BOUND_S = 15  # far above a healthy run of these tests; a hang fails here instead of stalling


class Boom(RuntimeError):
    """The injected failure."""


class DetectorFailingAt(SlowDetector):
    """Raises (or, with ``short``, returns one result too few) for the batch holding frame k."""

    def __init__(self, short: bool = False) -> None:
        super().__init__(0.0)
        self.short = short

    def detect(self, images):
        results = super().detect(images)
        if any(int(image[0, 0, 0]) == FAIL_AT for image in images):
            if self.short:
                return results[:-1]
            raise Boom("detector failed")
        return results


class SourceFailingAt(TickingSource):
    def frames(self):
        for frame in super().frames():
            if frame.index == FAIL_AT:
                raise Boom("source failed")
            yield frame


class SinkFailingAt(ListSink):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def write(self, frame, detections, scene) -> None:
        if frame.index == FAIL_AT:
            raise self.error
        super().write(frame, detections, scene)


class QuitPollFailingAt(ListSink):
    """The writer's own code (the window's quit poll) failing, outside any sink's ``write``."""

    @property
    def quit_requested(self) -> bool:
        if len(self.indices) == FAIL_AT:
            raise Boom("quit poll failed")
        return False


def bounded_run(pipeline: Pipeline):
    """``pipeline.run()`` on a thread: (summary or raised exception, seconds); fails past the bound."""
    outcome: list = []

    def target() -> None:
        try:
            outcome.append(pipeline.run())
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome.append(error)

    began = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(BOUND_S)
    assert not thread.is_alive(), f"the run hung for more than {BOUND_S} s"
    return outcome[0], time.monotonic() - began


# (source, failing detector, failing sink (after the recording ones), raised, most frames written)
FAILURES = {
    "detector raises": lambda: (TickingSource(2000, live=False), DetectorFailingAt(), None, Boom, FAIL_AT),
    "detector returns too few": lambda: (TickingSource(2000, live=False), DetectorFailingAt(short=True), None,
                                         RuntimeError, FAIL_AT),
    "source raises": lambda: (SourceFailingAt(2000, live=False), None, None, UserError, FAIL_AT),
    "sink raises": lambda: (TickingSource(2000, live=False), None, SinkFailingAt(Boom("sink failed")), Boom, FAIL_AT + 1),
    "disk full": lambda: (TickingSource(2000, live=False), None, SinkFailingAt(OSError(28, "No space left on device")),
                          UserError, FAIL_AT + 1),
    "writer raises": lambda: (TickingSource(2000, live=False), None, QuitPollFailingAt(), Boom, FAIL_AT + 1),
}


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("case", FAILURES)
def test_a_failing_stage_fails_the_run_promptly_with_every_written_frame_recorded(
    tmp_path: Path, case: str, workers: int
) -> None:
    source, detector, failing_sink, expected, most_written = FAILURES[case]()
    detectors = [detector or SlowDetector(0.0)] + [SlowDetector(0.0) for _ in range(workers - 1)]
    if detector is not None and workers == 2:
        detectors = [detector, DetectorFailingAt(detector.short)]  # whichever worker gets frame k
    written = ListSink()
    jsonl = tmp_path / "out.jsonl"
    sinks = [written, JsonLinesSink(jsonl)] + ([failing_sink] if failing_sink else [])
    pipeline = Pipeline(source, detectors, sinks, batch=2, progress=False)
    outcome, seconds = bounded_run(pipeline)
    assert isinstance(outcome, expected), outcome
    assert seconds < 5
    assert written.indices == list(range(len(written.indices))) and len(written.indices) <= most_written
    partial = tmp_path / "out.jsonl.partial"  # none when the failure came before the first frame
    records = [json.loads(line) for line in partial.read_text().splitlines()] if partial.exists() else []
    assert [r["frame"] for r in records] == written.indices  # every written frame has its record
    assert not jsonl.exists()  # a failed run never looks complete
    assert not [t.name for t in threading.enumerate() if t.name.startswith("livedroid-")]  # all joined


class FailingClose(ListSink):
    def close(self, complete: bool = True) -> None:
        raise Boom("close failed")


def test_every_sink_is_closed_even_when_one_fails_to_close(tmp_path: Path) -> None:
    after = ListSink()
    jsonl = tmp_path / "out.jsonl"
    sinks = [FailingClose(), JsonLinesSink(jsonl), after]
    outcome, _ = bounded_run(Pipeline(TickingSource(5, live=False), SlowDetector(0.0), sinks, progress=False))
    assert isinstance(outcome, Boom)
    assert after.closed
    assert (tmp_path / "out.jsonl.partial").exists() and not jsonl.exists()


class StallingDetector(SlowDetector):
    """Worker 0's first call takes ``seconds``; the other worker races ahead meanwhile."""

    def __init__(self, seconds: float) -> None:
        super().__init__(0.0)
        self.first = seconds

    def detect(self, images):
        self.seconds, self.first = self.first, 0.0
        return super().detect(images)


def test_finished_batches_held_for_reordering_are_bounded() -> None:
    pipeline = Pipeline(TickingSource(400, live=False), [StallingDetector(0.5), SlowDetector(0.0)], [ListSink()],
                        progress=False)
    most = 0
    sampling = threading.Event()

    def sample() -> None:
        nonlocal most
        while not sampling.is_set():
            most = max(most, pipeline.backlog["results_waiting"])
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    summary, _ = bounded_run(pipeline)
    sampling.set()
    sampler.join()
    assert summary.frames_processed == 400
    assert 0 < most <= pipeline.backlog["results_waiting_max"] <= 6


def test_cancel_stops_at_once_and_closes_what_was_written(tmp_path: Path) -> None:
    jsonl = tmp_path / "out.jsonl"
    pipeline = Pipeline(TickingSource(10**6, live=False), SlowDetector(0.001), [JsonLinesSink(jsonl)], progress=False)
    threading.Timer(0.2, pipeline.stop).start()
    threading.Timer(0.2, pipeline.cancel).start()
    summary, seconds = bounded_run(pipeline)
    assert summary.interrupted and seconds < 3
    records = [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()]
    assert records == list(range(summary.frames_processed))


class QuittingSink(ListSink):
    """The window's q after frame 3."""

    @property
    def quit_requested(self) -> bool:
        return len(self.indices) > 3


def test_quit_from_the_window_is_a_normal_end_not_an_interrupt() -> None:
    summary, _ = bounded_run(Pipeline(TickingSource(10**6, live=False), SlowDetector(0.001), [QuittingSink()],
                                      progress=False))
    assert not summary.interrupted and summary.frames_processed >= 4


def test_a_run_that_processes_nothing_writes_no_records(tmp_path: Path) -> None:
    jsonl = tmp_path / "out.jsonl"
    summary, _ = bounded_run(Pipeline(TickingSource(0, live=False), SlowDetector(0.0), [JsonLinesSink(jsonl)],
                                      progress=False))
    assert summary.frames_processed == 0
    assert not jsonl.exists() and not (tmp_path / "out.jsonl.partial").exists()
