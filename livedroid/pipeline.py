"""The real-time pipeline: three stages on three threads, connected by bounded buffers.

    reader thread          main thread                writer thread
    source → frames ──▶ FrameBuffer ──▶ detector ──▶ queue ──▶ annotate → sinks

Files apply back-pressure (every frame processed); live sources keep only the newest frames.
``stop()`` (Ctrl-C, SIGTERM, the window's q) ends reading; frames already in flight are still
processed and written, and every sink is closed, so the outputs are complete and playable.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from tqdm import tqdm

from livedroid.annotate import BoxAnnotator
from livedroid.detections import Detections
from livedroid.detectors.base import Detector
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.sinks.base import Sink
from livedroid.sources.base import Source
from livedroid.sources.reader import FrameBuffer, FrameReader
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
    source: Source
    detector: Detector
    sinks: list[Sink]
    selection: Selection = field(default_factory=Selection)
    batch: int = 1
    #: How long inference waits for a batch to fill once its first frame is there.
    batch_wait: float = 0.005
    progress: bool = True
    #: Stop after reading this many frames (None: until the source ends).
    max_frames: int | None = None
    #: Frame ages (capture → written) of the most recent frames, for latency figures.
    ages: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def __post_init__(self) -> None:
        self.batch = max(1, min(self.batch, self.detector.max_batch))
        capacity = self.batch if self.source.live else 2 * self.batch + 2
        self._buffer = FrameBuffer(capacity, drop_oldest=self.source.live)
        self._reader = FrameReader(self.source, self._buffer, self.max_frames)
        self._results: queue.Queue = queue.Queue(maxsize=2 * self.batch + 4)
        self._annotator = BoxAnnotator()
        self._inference = StageTimer()
        self._writing = StageTimer()
        self._processed = 0
        self._interrupted = False
        self._writer_error: BaseException | None = None

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
        self._reader.start()
        writer.start()
        failure: BaseException | None = None
        try:
            self._infer_loop()
        except BaseException as error:
            failure = error
            raise
        finally:
            self._reader.stop()
            self._buffer.close()
            self._results.put(_END)
            writer.join()
            self._reader.join(timeout=5)
            bar.close()
            failure = failure or self._writer_error or self._reader.error
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

    def _infer_loop(self) -> None:
        while self._writer_error is None:
            frames = self._buffer.get_batch(self.batch, self.batch_wait)
            if not frames:
                return
            began = time.perf_counter()
            results = self.detector.detect([frame.image for frame in frames])
            self._inference.add(time.perf_counter() - began, len(frames))
            for frame, detections in zip(frames, results):
                self._results.put((frame, self.selection.apply(detections)))

    def _write_loop(self, bar: tqdm) -> None:
        needs_scene = any(sink.needs_scene for sink in self.sinks)
        while (item := self._results.get()) is not _END:
            if self._writer_error is not None:
                continue  # drain so inference never blocks on a dead writer
            frame, detections = item
            try:
                with self._writing:
                    scene = self._annotator.annotate(frame.image, detections) if needs_scene else None
                    for sink in self.sinks:
                        sink.write(frame, detections, scene)
            except Exception as error:  # noqa: BLE001 - re-raised on the main thread
                self._writer_error = error
                self._reader.stop()
                continue
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
