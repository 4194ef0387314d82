"""The real-time pipeline: three stages on their own threads, connected by bounded buffers.

    reader thread          inference thread(s)            writer thread
    source → frames ──▶ FrameBuffer ──▶ detector(s) ──▶ queue ──▶ reorder → stages → annotate → sinks

Stages (tracking, zones, snapshots) run on the writer thread, in frame order.

Files apply back-pressure (every frame processed); live sources keep only the newest frames.
With several detectors (one interpreter each: interpreters are not thread-safe), batches are
inferred in parallel and the writer puts them back in order.
``stop()`` (Ctrl-C, SIGTERM, the window's q) ends reading; frames already in flight are still
processed and written, and every sink is closed, so the outputs are complete and playable.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count

from tqdm import tqdm

from livedroid.annotate import BoxAnnotator
from livedroid.detections import Detections
from livedroid.detectors.base import Detector
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.sinks.base import Sink
from livedroid.sources.base import Source
from livedroid.sources.reader import FrameBuffer, FrameReader
from livedroid.stages import Stage
from livedroid.stats import RunSummary, StageTimer

log = logging.getLogger(__name__)

_END = None  # marks the end of the writer's queue


@dataclass
class Selection:
    """Which detections are kept: score threshold, class allow-list, count limit."""

    min_score: float = 0.5
    classes: set[str] | None = None
    max_detections: int = 100

    def apply(self, detections: Detections) -> Detections:
        return detections.select(self.min_score, self.classes, self.max_detections)


@dataclass
class Pipeline:
    """Runs ``source`` through ``detector`` into ``sinks``; ``run()`` once, ``stop()`` from anywhere.

    ``detector`` may be a list of equivalent detectors: each gets an inference thread, which
    pays on multi-core machines when one interpreter cannot use all cores.
    """

    source: Source
    detector: Detector | Sequence[Detector]
    sinks: list[Sink]
    selection: Selection = field(default_factory=Selection)
    #: Steps after selection, in order: e.g. a tracker, then zones (see livedroid/stages.py).
    stages: list[Stage] = field(default_factory=list)
    batch: int = 1
    #: How long inference waits for a batch to fill once its first frame is there.
    batch_wait: float = 0.005
    progress: bool = True
    #: Stop after reading this many frames (None: until the source ends).
    max_frames: int | None = None
    #: Frame ages (capture → written) of the most recent frames, for latency figures.
    ages: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def __post_init__(self) -> None:
        self._detectors = list(self.detector) if isinstance(self.detector, Sequence) else [self.detector]
        self.batch = max(1, min(self.batch, *(d.max_batch for d in self._detectors)))
        workers = len(self._detectors)
        capacity = self.batch * workers if self.source.live else (2 * self.batch + 2) * workers
        self._buffer = FrameBuffer(capacity, drop_oldest=self.source.live)
        self._reader = FrameReader(self.source, self._buffer, self.max_frames)
        self._results: queue.Queue = queue.Queue(maxsize=2 * self.batch * workers + 4)
        self._dispatch = threading.Lock()  # numbers batches in the order they leave the buffer
        self._batch_numbers = count()
        self._annotator = BoxAnnotator()
        self._inference = StageTimer()
        self._writing = StageTimer()
        self._processed = 0
        self._interrupted = False
        self._errors: list[BaseException] = []

    @property
    def backlog(self) -> dict[str, int]:
        """Queue depths and drops right now: for monitoring long live runs."""
        return {
            "frames_waiting": len(self._buffer),
            "frames_waiting_max": self._buffer.capacity,
            "results_waiting": self._results.qsize(),
            "results_waiting_max": self._results.maxsize,
            "dropped": self._buffer.dropped,
        }

    def stop(self) -> None:
        """Stop reading; what was read is still processed and written."""
        self._interrupted = True
        self._reader.stop()

    def run(self) -> RunSummary:
        started = time.perf_counter()
        bar = tqdm(
            total=self.source.frame_count,
            unit="frame",
            disable=not self.progress,
            dynamic_ncols=True,
            desc=self.source.description[-40:],
        )
        writer = threading.Thread(target=self._write_loop, args=(bar,), name="livedroid-writer", daemon=True)
        inference = [
            threading.Thread(target=self._infer_loop, args=(detector,), name=f"livedroid-inference-{n}", daemon=True)
            for n, detector in enumerate(self._detectors)
        ]
        self._reader.start()
        writer.start()
        for thread in inference:
            thread.start()
        try:
            for thread in inference:
                while thread.is_alive():  # a timed join lets the main thread run signal handlers
                    thread.join(timeout=0.2)
        finally:
            self._reader.stop()
            self._buffer.close()
            for thread in inference:
                thread.join()
            self._results.put(_END)
            writer.join()
            self._reader.join(timeout=5)
            bar.close()
            failure = (self._errors or [self._reader.error])[0]
            for stage in self.stages:  # before the sinks: closing a stage may still write records
                stage.close(complete=failure is None)
            for sink in self.sinks:
                sink.close(complete=failure is None)
        if failure is not None:
            raise failure if isinstance(failure, UserError) else UserError(f"{self.source.description}: {failure}")
        return RunSummary(
            frames_read=self._reader.frames_read,
            frames_processed=self._processed,
            frames_dropped=self._buffer.dropped,
            frames_skipped=self.source.skipped,
            seconds=time.perf_counter() - started,
            decode_ms=self._reader.timer.mean_ms,
            inference_ms=self._inference.mean_ms,
            write_ms=self._writing.mean_ms,
            interrupted=self._interrupted,
            latency_ms=_percentiles_ms(self.ages) if self.source.live else None,
        )

    def _fail(self, error: BaseException) -> None:
        """Record the first error of any stage and stop reading; the main thread re-raises it."""
        self._errors.append(error)
        self._reader.stop()

    def _infer_loop(self, detector: Detector) -> None:
        while not self._errors:
            with self._dispatch:
                frames = self._buffer.get_batch(self.batch, self.batch_wait)
                number = next(self._batch_numbers)
            if not frames:
                return
            began = time.perf_counter()
            try:
                results = detector.detect([frame.image for frame in frames])
            except Exception as error:  # noqa: BLE001 - re-raised on the main thread
                self._fail(error)
                return
            self._inference.add(time.perf_counter() - began, len(frames))
            self._results.put((number, [(f, self.selection.apply(d)) for f, d in zip(frames, results)]))

    def _write_loop(self, bar: tqdm) -> None:
        needs_scene = any(sink.needs_scene for sink in self.sinks)
        waiting: dict[int, list[tuple[Frame, Detections]]] = {}  # batches that finished early
        next_number = 0
        while (item := self._results.get()) is not _END:
            number, batch = item
            waiting[number] = batch
            while next_number in waiting:
                for frame, detections in waiting.pop(next_number):
                    if not self._errors:
                        self._write(frame, detections, needs_scene, bar)
                next_number += 1

    def _write(self, frame: Frame, detections: Detections, needs_scene: bool, bar: tqdm) -> None:
        try:
            with self._writing:
                for stage in self.stages:
                    detections = stage.update(detections, frame)
                scene = self._annotator.annotate(frame.image, detections) if needs_scene else None
                for stage in self.stages if needs_scene else ():
                    stage.draw(scene)
                for sink in self.sinks:
                    sink.write(frame, detections, scene)
        except Exception as error:  # noqa: BLE001 - re-raised on the main thread
            self._fail(error)
            return
        self._processed += 1
        self.ages.append(time.monotonic() - frame.captured_at)
        bar.update(1)
        if any(getattr(sink, "quit_requested", False) for sink in self.sinks):
            self.stop()


def _percentiles_ms(ages: deque[float]) -> tuple[float, float] | None:
    """(p50, p95) of frame ages in milliseconds."""
    if not ages:
        return None
    ordered = sorted(ages)
    return 1000 * ordered[len(ordered) // 2], 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
