"""Annotate one file of a batch, in whichever process runs it (a local worker or a Ray task)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livedroid.batch.files import FileJob
from livedroid.batch.manifest import DONE, FAILED, INCOMPLETE, INTERRUPTED, Outcome
from livedroid.codecs import DEFAULT_PRESET
from livedroid.detections import Detections
from livedroid.detectors import Detector, load_detector
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.engine import EngineSettings, build_engine
from livedroid.pipeline import Pipeline
from livedroid.settings import DEFAULT_CRF
from livedroid.sinks import JsonLinesSink, Sink, VideoSink
from livedroid.sources import VideoSource


@dataclass(frozen=True)
class BatchSettings:
    """Everything a worker needs to annotate any file of the batch (sent to every worker): the
    engine's settings and the encoder's."""

    engine: EngineSettings
    crf: int = DEFAULT_CRF
    preset: str = DEFAULT_PRESET
    video: bool = True

    @property
    def backend(self) -> str | None:
        return self.engine.backend

    @property
    def threads(self) -> int | None:
        return self.engine.threads

    def fingerprint(self) -> str:
        """Identifies what shapes the outputs (not threads or batch size): a rerun with other
        settings redoes the files instead of skipping them."""
        model = Path(self.engine.model)
        stamp = [model.stat().st_mtime, model.stat().st_size] if model.is_file() else None
        shaping = {**self.engine.shaping(), "crf": self.crf, "preset": self.preset, "video": self.video}
        return hashlib.sha256(json.dumps([shaping, stamp], sort_keys=True).encode()).hexdigest()[:16]


_loaded: dict[EngineSettings, Detector] = {}


def detector_for(settings: EngineSettings) -> Detector:
    """One interpreter per worker process, loaded with its first file and reused for the next."""
    if settings not in _loaded:
        _loaded[settings] = load_detector(
            settings.model, settings.backend, device=settings.device, labels=settings.labels, threads=settings.threads,
            batch=settings.batch,
        )
    return _loaded[settings]


def annotate_file(
    job: FileJob,
    settings: BatchSettings,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    on_frames: Callable[[int], None] | None = None,
) -> Outcome:
    """Run ``job.input`` through the engine into its video and JSON Lines file.

    Failures become a ``failed`` outcome rather than an exception, so one bad file never ends the
    batch. A file stopped part-way (``should_stop``, or a KeyboardInterrupt: Ray's cancel) keeps its
    outputs under their ``.partial`` names, so it is never mistaken for a finished one.
    """
    fingerprint = settings.fingerprint()
    started = time.perf_counter()
    stopped = threading.Event()
    try:
        engine = build_engine(settings.engine, [detector_for(settings.engine)])
        with VideoSource(job.input) as source:
            sinks: list[Sink] = [JsonLinesSink(job.jsonl, overwrite=True, inputs=(job.input,))]
            if job.video:
                sinks.insert(0, VideoSink.for_source(job.video, source, crf=settings.crf, preset=settings.preset,
                                                     overwrite=True, inputs=(job.input,)))
            if on_frames:
                sinks.append(FrameCounter(on_frames))
            pipeline = engine.pipeline(source, [FinishedOnlyIfWhole(sink, stopped) for sink in sinks],
                                       batch=settings.engine.batch, progress=False)
            summary = _run_until_stopped(pipeline, stopped, should_stop)
    except UserError as error:
        return Outcome.of(job, fingerprint, FAILED, error=str(error), seconds=time.perf_counter() - started)
    except Exception as error:  # noqa: BLE001 - a bug: this file fails, with the traceback in its record
        return Outcome.of(job, fingerprint, FAILED, error=f"internal error: {type(error).__name__}: {error}",
                          traceback=traceback.format_exc(), seconds=time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if stopped.is_set():
        return Outcome.of(job, fingerprint, INTERRUPTED, frames=summary.frames_processed, seconds=seconds)
    if summary.frames_processed == 0:
        return Outcome.of(job, fingerprint, FAILED, error=f"{job.input}: no frame could be decoded", seconds=seconds)
    if source.damage:
        return Outcome.of(job, fingerprint, INCOMPLETE, frames=summary.frames_processed, seconds=seconds,
                          error=f"{job.input} is damaged, {source.damage}")
    return Outcome.of(job, fingerprint, DONE, frames=summary.frames_processed, seconds=seconds)


def _run_until_stopped(pipeline: Pipeline, stopped: threading.Event, should_stop: Callable[[], bool]):
    """``pipeline.run()`` on a thread, while this one watches for a stop request.

    The wait is on an Event, not ``Thread.join``: a KeyboardInterrupt inside ``join`` makes Python
    (3.11, bpo-45274) report a running thread as ended.
    """
    result: dict = {}
    finished = threading.Event()

    def run() -> None:
        try:
            result["summary"] = pipeline.run()
        except BaseException as error:  # noqa: BLE001 - re-raised below, on the caller's thread
            result["error"] = error
        finally:
            finished.set()

    runner = threading.Thread(target=run, name="livedroid-batch-file", daemon=True)
    runner.start()
    while not finished.is_set():
        try:
            finished.wait(timeout=0.2)
            if should_stop() and not stopped.is_set():
                stopped.set()
                pipeline.stop()
        except KeyboardInterrupt:
            stopped.set()
            pipeline.stop()
    runner.join()
    if "error" in result:
        raise result["error"]
    return result["summary"]


class FinishedOnlyIfWhole(Sink):
    """Passes everything to ``sink``, but a file the batch stopped part-way stays ``.partial``."""

    def __init__(self, sink: Sink, stopped: threading.Event) -> None:
        self.sink = sink
        self.stopped = stopped
        self.needs_scene = sink.needs_scene
        self.path = sink.path

    def write(self, frame: Frame, detections: Detections, scene: np.ndarray | None) -> None:
        self.sink.write(frame, detections, scene)

    def close(self, complete: bool = True) -> None:
        self.sink.close(complete and not self.stopped.is_set())


class FrameCounter(Sink):
    """Reports frames done to the batch's progress bar, at most a few times a second."""

    needs_scene = False

    def __init__(self, report: Callable[[int], None], every: float = 0.25) -> None:
        self.report = report
        self.every = every
        self._unreported = 0
        self._last = time.monotonic()

    def write(self, frame: Frame, detections: Detections, scene: np.ndarray | None) -> None:
        self._unreported += 1
        if time.monotonic() - self._last >= self.every:
            self.close()

    def close(self, complete: bool = True) -> None:
        if self._unreported:
            self.report(self._unreported)
        self._unreported = 0
        self._last = time.monotonic()
