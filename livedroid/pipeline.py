"""The real-time pipeline: three stages on their own threads, connected by bounded buffers.

    reader thread          inference thread(s)                  writer thread
    source → frames ──▶ FrameBuffer ──▶ detector(s) ──▶ ReorderBuffer ──▶ stages → annotate → sinks

Stages (tracking, zones, snapshots) run on the writer thread, in frame order.

Files apply back-pressure (every frame processed); live sources keep only the newest frames.
With several detectors (one interpreter each: interpreters are not thread-safe), batches are
inferred in parallel and the writer takes them back in order.

Two ways to end early, as in Frigate's supervisor: ``stop()`` (Ctrl-C, SIGTERM, the window's q)
ends reading, and frames already in flight are still processed and written; a failure in any
stage, or ``cancel()`` (a second Ctrl-C), closes every buffer at once so that no thread waits
forever, and the run ends within a bounded time (a failed run's outputs stay ``.partial``).
Every thread body is guarded: whatever fails is re-raised on the caller's thread, never lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from livedroid.annotate import BoxAnnotator
from livedroid.detections import Detections
from livedroid.detectors.base import Detector
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.settings import DEFAULT_MAX_DETECTIONS, DEFAULT_THRESHOLD
from livedroid.sinks.base import Sink
from livedroid.sources.base import Source
from livedroid.sources.reader import FrameBuffer, FrameReader
from livedroid.stages import Stage
from livedroid.stats import RunSummary, Stopwatch, percentiles_ms

log = logging.getLogger(__name__)

#: Seconds the threads get to leave after a failure or ``cancel()`` before the run stops waiting.
CANCEL_GRACE_S = 10.0
#: Seconds the reader gets to leave FFmpeg or OpenCV before its source is left open.
READER_JOIN_S = 5.0


class ReorderBuffer:
    """Numbered batches in, the same batches out in number order; closeable.

    A batch numbered ``window`` or more past the next one to leave waits for room, so however
    unequal the workers, at most ``window`` batches are held.
    """

    def __init__(self, window: int) -> None:
        self.window = max(1, window)
        self._batches: dict[int, list] = {}
        self._next = 0
        self._finished = False
        self._cancelled = False
        self._changed = threading.Condition()

    def put(self, number: int, batch: list) -> bool:
        """Hand over batch ``number``; False if the run was cancelled."""
        with self._changed:
            while number >= self._next + self.window and not self._cancelled:
                self._changed.wait()
            if self._cancelled:
                return False
            self._batches[number] = batch
            self._changed.notify_all()
            return True

    def get(self) -> list | None:
        """The next batch in order; None once finished and drained, or cancelled."""
        with self._changed:
            while self._next not in self._batches and not self._finished and not self._cancelled:
                self._changed.wait()
            if self._cancelled:
                return None
            if self._next not in self._batches:
                if self._batches:
                    raise RuntimeError(f"batch {self._next} never arrived (held: {sorted(self._batches)})")
                return None
            self._next += 1
            self._changed.notify_all()
            return self._batches.pop(self._next - 1)

    def finish(self) -> None:
        """No more batches will come; ``get`` drains what is held."""
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def cancel(self) -> None:
        """Wake and release everyone; what is held is dropped."""
        with self._changed:
            self._cancelled = True
            self._batches.clear()
            self._changed.notify_all()

    def __len__(self) -> int:
        return len(self._batches)


@dataclass
class Selection:
    """Which detections are kept: score threshold, class allow-list, count limit."""

    min_score: float = DEFAULT_THRESHOLD
    classes: set[str] | None = None
    max_detections: int = DEFAULT_MAX_DETECTIONS

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
        self._reader = FrameReader(self.source, self._buffer, self.max_frames, on_error=self._fail)
        self._results = ReorderBuffer(2 * workers + 2)
        self._dispatch = threading.Lock()  # numbers batches in the order they leave the buffer
        self._batches_taken = 0
        self._annotator = BoxAnnotator()
        self._inference = Stopwatch()
        self._writing = Stopwatch()
        self._processed = 0
        self._interrupted = False
        self._cancelled = threading.Event()
        self._abandoned = False
        self._errors: list[BaseException] = []

    @property
    def backlog(self) -> dict[str, int]:
        """Queue depths and drops right now: for monitoring long live runs."""
        return {
            "frames_waiting": len(self._buffer),
            "frames_waiting_max": self._buffer.capacity,
            "results_waiting": len(self._results),
            "results_waiting_max": self._results.window,
            "dropped": self._buffer.dropped,
        }

    @property
    def reading(self) -> bool:
        """True while the reader thread may still be inside the source: do not close it then."""
        return self._reader.is_alive()

    def stop(self, interrupted: bool = True) -> None:
        """Stop reading; what was read is still processed and written. ``interrupted=False``
        is a normal end asked for by the user (the window's q)."""
        self._interrupted = self._interrupted or interrupted
        self._reader.stop()

    def cancel(self) -> None:
        """Stop at once (a second Ctrl-C): frames in flight are dropped; the outputs are closed
        with what was written, or left ``.partial`` if the writer does not stop within a second."""
        self._interrupted = True
        self._abandoned = True
        self._abort()

    def _abort(self) -> None:
        """Wake every thread and make every wait return: the cancellation token."""
        self._cancelled.set()
        self._reader.stop()
        self._buffer.close(discard=True)
        self._results.cancel()

    def _fail(self, error: BaseException) -> None:
        """Record the first error of any stage and cancel the run; ``run()`` re-raises it."""
        if not self._errors:
            log.debug("%s failed", threading.current_thread().name, exc_info=error)
        self._errors.append(error)
        self._abort()

    def run(self) -> RunSummary:
        started = time.perf_counter()
        bar = tqdm(
            total=_expected_frames(self.source.frame_count, self.max_frames),
            unit="frame",
            disable=not self.progress,
            dynamic_ncols=True,
            desc=_bar_label(self.source.description),
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
            self._supervise(inference, writer)
        finally:
            # Threads still inside native code (an interpreter, FFmpeg) when the process exits
            # abort it, so each gets a bounded while to leave.
            deadline = time.monotonic() + (1.0 if self._abandoned else CANCEL_GRACE_S)
            for thread in (*inference, writer):
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            self._reader.stop()
            self._buffer.close(discard=self._cancelled.is_set())
            self._reader.join(timeout=0.5 if self._abandoned else READER_JOIN_S)
            if self._reader.is_alive():
                log.warning("%s: the reader is still waiting on the source; leaving it open", self.source.description)
            bar.close()
            failure = self._errors[0] if self._errors else None
            if writer.is_alive():
                log.warning("the writer did not stop: outputs left unfinished")
            else:
                closing = self._close_outputs(complete=failure is None)
                failure = failure or closing
        if failure is not None:
            raise failure
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
            latency_ms=percentiles_ms(self.ages) if self.source.live else None,
        )

    def _supervise(self, inference: list[threading.Thread], writer: threading.Thread) -> None:
        """Wait for the threads with short joins (so signal handlers run on this thread); once
        cancelled, wait at most ``CANCEL_GRACE_S`` (a second after ``cancel()``)."""
        deadline = None
        try:
            while writer.is_alive():
                writer.join(timeout=0.1)
                if not any(thread.is_alive() for thread in inference):
                    self._results.finish()
                if self._cancelled.is_set():
                    grace = 1.0 if self._abandoned else CANCEL_GRACE_S
                    deadline = deadline or time.monotonic() + grace
                    if time.monotonic() > deadline:
                        return
        except BaseException as error:  # KeyboardInterrupt outside the signal helper
            self._fail(error)
            raise

    def _infer_loop(self, detector: Detector) -> None:
        try:
            while not self._cancelled.is_set():
                with self._dispatch:
                    frames = self._buffer.get_batch(self.batch, self.batch_wait)
                    number = self._batches_taken
                    self._batches_taken += len(frames) > 0
                if not frames:
                    return
                began = time.perf_counter()
                results = detector.detect([frame.image for frame in frames])
                if len(results) != len(frames):
                    raise RuntimeError(
                        f"{type(detector).__name__}.detect returned {len(results)} results for {len(frames)} frames"
                    )
                self._inference.add(time.perf_counter() - began, len(frames))
                if not self._results.put(number, [(f, self.selection.apply(d)) for f, d in zip(frames, results)]):
                    return
        except BaseException as error:  # noqa: BLE001 - re-raised on the main thread
            self._fail(error)

    def _write_loop(self, bar: tqdm) -> None:
        try:
            needs_scene = any(sink.needs_scene for sink in self.sinks)
            while (batch := self._results.get()) is not None:
                for frame, detections in batch:
                    if self._cancelled.is_set():
                        return
                    self._write(frame, detections, needs_scene)
                    bar.update(1)
                    if any(getattr(sink, "quit_requested", False) for sink in self.sinks):
                        self.stop(interrupted=False)
        except BaseException as error:  # noqa: BLE001 - re-raised on the main thread
            self._fail(error)

    def _write(self, frame: Frame, detections: Detections, needs_scene: bool) -> None:
        with self._writing:
            for stage in self.stages:
                detections = stage.update(detections, frame)
            scene = self._annotator.annotate(frame.image, detections) if needs_scene else None
            for stage in self.stages if needs_scene else ():
                stage.draw(scene)
            for sink in self.sinks:
                try:
                    sink.write(frame, detections, scene)
                except Exception as error:
                    raise _output_error(sink, error) from error
        self._processed += 1
        self.ages.append(time.monotonic() - frame.captured_at)

    def _close_outputs(self, complete: bool) -> BaseException | None:
        """Close every stage, then every sink (closing a stage may still write records), all of
        them even when some fail; the first failure is returned."""
        failure = None
        for output in (*self.stages, *self.sinks):
            try:
                output.close(complete=complete)
            except Exception as error:  # noqa: BLE001 - the others must still be closed
                log.debug("closing %s failed", type(output).__name__, exc_info=True)
                failure = failure or _output_error(output, error)
                complete = False
        return failure


def _output_error(output: Sink | Stage, error: Exception) -> Exception:
    """A disk failure (full, too large, gone) as one line naming the output; others stay internal."""
    if isinstance(error, OSError):
        return UserError(f"cannot write {getattr(output, 'path', None) or type(output).__name__}: {error.strerror or error}")
    return error


def _expected_frames(announced: int | None, limit: int | None) -> int | None:
    """The progress bar's total: what the source announces, or ``--max-frames`` when it is fewer."""
    if limit is None:
        return announced
    return limit if announced is None else min(announced, limit)


def _bar_label(description: str, width: int = 40) -> str:
    """The end of ``description`` in at most ``width`` characters, cut at a path or word boundary."""
    if len(description) <= width:
        return description
    tail = description[-(width - 1):]
    for separator in ("/", " ", "_", "-"):
        cut = tail.find(separator)
        if 0 <= cut < len(tail) - 1:
            return "…" + tail[cut + (separator == "/"):]
    return "…" + tail
