"""The cameras of ``livedroid serve``: each runs the engine (a Pipeline) on its own thread and is
restarted when it fails or its stream gives up; the service owns them and the shared inference.

    camera source → CappedFeed (detect_fps) → Pipeline(CameraDetector → shared workers)
        → tracker, zones (events → EventHub) → LiveView (latest JPEG, stats) [+ SegmentRecorder]
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.engine import build_engine
from livedroid.pipeline import Pipeline
from livedroid.sinks.base import Sink
from livedroid.sources import StreamSource, open_source
from livedroid.sources.video import is_stream_url, mask_credentials
from livedroid.service.backoff import Backoff
from livedroid.service.config import CameraConfig, ServiceConfig
from livedroid.service.events import EventHub
from livedroid.service.feeds import CappedFeed, LoopingVideo
from livedroid.service.inference import SharedInference
from livedroid.service.rates import RateMeter
from livedroid.service.recording_index import RecordingIndex
from livedroid.service.recordings import CaptureWindow, Retention, SegmentRecorder
from livedroid.stats import percentiles_ms

log = logging.getLogger("livedroid")

#: Seconds between restarts of a camera that failed or could not connect (doubling up to the max).
RESTART_FIRST_S, RESTART_MAX_S = 1.0, 30.0
#: A connection that lasted this long was healthy: the next restart waits RESTART_FIRST_S again.
HEALTHY_S = 60.0
#: A camera with no frame for this long shows as "waiting" (reconnecting, or a stalled stream).
STALE_S = 3.0
#: Seconds the cameras get to close their records after a second Ctrl-C (one may be mid-connect).
CANCEL_GRACE_S = 1.0


class LiveView(Sink):
    """Keeps the newest annotated picture as JPEG for the page, and counts processed frames;
    ``subscribers`` get each frame's label counts and picture (Home Assistant's states)."""

    needs_scene = True

    def __init__(self, quality: int = 80) -> None:
        self.quality = quality
        self.jpeg: bytes | None = None
        self.sequence = 0
        self.detected = RateMeter()
        self.processed = 0
        self.objects: dict[str, int] = {}
        self.subscribers: list[Callable[[dict[str, int], bytes | None], None]] = []

    def write(self, frame: Frame, detections: Detections, scene: np.ndarray | None) -> None:
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(scene, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if ok:
            self.jpeg = encoded.tobytes()
            self.sequence += 1
        self.processed += 1
        self.detected.tick()
        self.objects = {label: detections.labels.count(label) for label in set(detections.labels)}
        for subscriber in self.subscribers:
            subscriber(self.objects, self.jpeg)


class Camera:
    """One camera: opens its source, runs a Pipeline on it, and starts again (with back-off) after a
    failure or a stream that gave up reconnecting, until the service stops. Never raises into the
    service."""

    def __init__(self, config: CameraConfig, inference: SharedInference, events: EventHub, *,
                 model: str, recordings: Path, timeouts: dict[str, float]) -> None:
        self.config = config
        self.name = config.name
        self.model = model  # the shared inference's key in the stats, e.g. coco-ssd-mobilenet-v2
        self.inference = inference
        self.events = events
        self.timeouts = timeouts
        self.view = LiveView()
        self.recorder = SegmentRecorder(
            self.name, Path(config.recordings or recordings), segment_seconds=config.segment_seconds,
            max_gb=config.recordings_max_gb, max_share=config.recordings_max_share, min_free_gb=config.recordings_min_free_gb, events=lambda: events.counts.get(self.name, 0),
            capture=CaptureWindow(config.record, config.pre_capture, config.post_capture) if isinstance(config.record, str) else None,
        ) if config.record else None
        self.state = "starting"
        self.error: str | None = None
        self.reconnects = 0
        self.dropped = 0
        self.capped = 0
        self.frames_read = 0
        self.reading = RateMeter()
        self._feed: CappedFeed | None = None
        self._pipeline: Pipeline | None = None
        self._stopping = threading.Event()
        #: Set by ``stop`` to cut short a connect in flight (a stream's retries, for up to --connect-timeout).
        self._connecting = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"livedroid-camera-{self.name}", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop reading; frames in flight are still processed, records closed."""
        self._stopping.set()
        with self._lock:
            self._connecting.set()
            if self._pipeline is not None:
                self._pipeline.stop()

    def cancel(self) -> None:
        self._stopping.set()
        with self._lock:
            self._connecting.set()
            if self._pipeline is not None:
                self._pipeline.cancel()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        """Connections one after the other; the wait between them grows with every failure (a
        source that opens and fails at once, too) and starts small again after a healthy run."""
        backoff, opened = Backoff(RESTART_FIRST_S, RESTART_MAX_S, healthy=HEALTHY_S), 0
        while not self._stopping.is_set():
            began = time.monotonic()
            opened += self._run_once(reconnecting=opened > 0)
            if self._stopping.wait(backoff.next(ran=time.monotonic() - began)):
                break
        self.state = "stopped"

    def _run_once(self, reconnecting: bool) -> bool:
        """One connection's life: open the source, run the engine on it until it ends or fails.
        False when the source could not be opened."""
        with self._lock:
            self._connecting = threading.Event()
            if self._stopping.is_set():
                return False
        try:
            source = self._open()
        except UserError as error:
            if not self._stopping.is_set():
                self._report("offline", str(error))
            return False
        self.reconnects += reconnecting
        if self.recorder is not None:
            source.tap_audio()  # segments keep the camera's audio
        feed = CappedFeed(source, self.config.detect_fps, self.reading)
        pipeline = None
        try:
            engine = build_engine(self.config.engine, [self.inference.for_camera(self.name)],
                                  event_log=self.events.log_for(self.name))
            pipeline = engine.pipeline(feed, self._sinks(feed), batch=1, progress=False)
            with self._lock:
                self._feed, self._pipeline = feed, pipeline
                if self._stopping.is_set():
                    pipeline.stop()
            self.state, self.error = "live", None
            pipeline.run()
            if not self._stopping.is_set():
                self._report("reconnecting", "the stream ended or gave up reconnecting")
        except Exception as error:  # noqa: BLE001 - one camera failing never stops the others
            log.debug("camera %s failed", self.name, exc_info=True)
            self._report("failed", f"{type(error).__name__}: {error}" if not isinstance(error, UserError) else str(error))
        finally:
            with self._lock:
                self._collect(feed, pipeline)
                self._feed, self._pipeline = None, None
            if pipeline is None or not pipeline.reading:
                source.close()
        return True

    def _open(self):
        spec = self.config.source
        if self.config.loop and not is_stream_url(spec):
            return LoopingVideo(spec)
        if is_stream_url(spec):
            return StreamSource(spec, interrupted=self._connecting, **self.timeouts)
        return open_source(spec, **self.timeouts)

    def _sinks(self, feed: CappedFeed) -> list[Sink]:
        sinks: list[Sink] = [self.view]
        if self.recorder is not None:
            self.recorder.fps, self.recorder.audio = feed.fps, feed.audio
            sinks.append(self.recorder)
        return sinks

    def _collect(self, feed: CappedFeed, pipeline: Pipeline | None) -> None:
        """Fold a finished connection's counts into the camera's totals."""
        self.reconnects += feed.reconnects
        self.frames_read += feed.frames_read
        self.capped += feed.capped
        if pipeline is not None:
            self.dropped += pipeline.backlog["dropped"]

    def _report(self, state: str, reason: str) -> None:
        """Say once per change what happened, in words without the camera's URL."""
        reason = self.redact(reason)
        if (state, reason) != (self.state, self.error):
            log.warning("camera %s: %s (%s)%s", self.name, state, reason,
                        "" if self._stopping.is_set() else "; trying again")
        self.state, self.error = state, reason

    def redact(self, text: str) -> str:
        """``text`` without the camera's source, masked or not (responses never show it)."""
        for form in (self.config.source, mask_credentials(self.config.source)):
            text = text.replace(form, f"camera {self.name}")
        return text

    # -- figures ---------------------------------------------------------------------------
    def stats(self) -> dict:
        """The camera's figures now (no source URL: responses never show it)."""
        with self._lock:
            feed, pipeline = self._feed, self._pipeline
            read = self.frames_read + (feed.frames_read if feed else 0)
            reconnects = self.reconnects + (feed.reconnects if feed else 0)
            dropped = self.dropped + (pipeline.backlog["dropped"] if pipeline else 0)
            capped = self.capped + (feed.capped if feed else 0)
            last = feed.last_frame_at if feed else None
            ages = list(pipeline.ages)[-300:] if pipeline else []
        state = self.state
        if state == "live" and (last is None or time.monotonic() - last > STALE_S):
            state = "waiting"
        p50, p95 = percentiles_ms(ages) or (None, None)
        return {
            "state": state,
            "error": self.error,
            "fps": round(self.reading.rate(), 2),
            "detect_fps": round(self.view.detected.rate(), 2),
            "detect_fps_cap": self.config.detect_fps,
            "motion": self.config.motion,
            "model_runs_per_frame": round(self.inference.served.get(self.name, 0) / max(1, self.view.processed), 2),
            "frames_read": read,
            "frames_processed": self.view.processed,
            "dropped": dropped,
            "skipped_by_cap": capped,
            "latency_ms": {"p50": _round(p50), "p95": _round(p95)},
            "reconnects": reconnects,
            "events": self.events.counts.get(self.name, 0),
            "objects": self.view.objects,
            "model": self.model,
            **(self.recorder.stats() if self.recorder else NOT_RECORDING),
        }


NOT_RECORDING = {"recording": "off", "recording_error": None, "segments_recorded": 0, "recording_failures": 0,
                 "segments_deleted": 0, "deletions": {}, "recordings": None, "segments_kept": 0,
                 "recordings_bytes": 0, "oldest_kept": None}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class CameraService:
    """All cameras of one ``livedroid serve``: one SharedInference per model, one Camera each."""

    def __init__(self, config: ServiceConfig, events: EventHub, *, backend: str | None = None, device: str | None = None,
                 workers: int | None = None, threads: int | None = None, batch: int = 4,
                 timeouts: dict[str, float] | None = None) -> None:
        from livedroid.detectors import load_detectors
        from livedroid.models import resolve_model

        self.events = events
        self._cancelled_at = float("inf")
        self.inference: dict[Path, SharedInference] = {}
        self.cameras: dict[str, Camera] = {}
        for camera in config.cameras:
            _check_source(camera)
        try:
            for camera in config.cameras:
                model = resolve_model(camera.model)
                if model not in self.inference:
                    users = sum(resolve_model(c.model) == model for c in config.cameras)
                    self.inference[model] = SharedInference(load_detectors(
                        model, backend, workers=workers, threads=threads, batch=min(users, batch), device=device))
                shared = self.inference[model]
                _check_labels(camera, set(shared.labels.values()))
                self.cameras[camera.name] = Camera(camera, shared, events, model=model_name(model),
                                                   recordings=Path(config.recordings), timeouts=timeouts or {})
        except BaseException:
            self.close()
            raise
        self.retention = Retention([c.recorder for c in self.cameras.values() if c.recorder is not None],
                                   {c.name: c.keep_seconds for c in config.cameras})

    def start(self) -> None:
        for camera in self.cameras.values():
            camera.start()
        self.retention.start()

    def stop(self) -> None:
        self.retention.stop()
        for camera in self.cameras.values():
            camera.stop()

    def cancel(self) -> None:
        """Stop at once (a second Ctrl-C): ``wait`` gives the cameras a second, not more."""
        self._cancelled_at = time.monotonic()
        for camera in self.cameras.values():
            camera.cancel()
        for shared in self.inference.values():
            shared.close()

    def wait(self, stop_requested: Callable[[], bool]) -> None:
        """Serve until ``stop_requested()``, then stop the cameras and wait for them to close their
        records (in short sleeps, so that signal handlers run). Not an ``Event.wait``: the signal
        handler that asks for the stop would then set an Event whose lock this very thread may hold
        at that instant, and hang."""
        while not stop_requested():
            time.sleep(0.2)
        self.stop()
        for camera in self.cameras.values():
            while camera.alive and time.monotonic() - self._cancelled_at < CANCEL_GRACE_S:
                camera.join(0.2)

    def subscribe_frames(self, subscriber: Callable[[str, dict[str, int], bytes | None], None]) -> None:
        """``subscriber(camera, label counts, JPEG)`` after every processed frame of every camera."""
        for name, camera in self.cameras.items():
            camera.view.subscribers.append(lambda objects, jpeg, name=name: subscriber(name, objects, jpeg))

    def stats(self) -> dict:
        """Each camera's figures, and each shared model's: calls, frames per call, fairness."""
        return {
            "cameras": {name: camera.stats() for name, camera in self.cameras.items()},
            "inference": {model_name(model): shared.stats() for model, shared in self.inference.items()},
        }

    def recordings(self, camera: str | None = None, start: float | None = None, end: float | None = None) -> list[dict]:
        """The closed segments overlapping [start, end] (seconds since 1970; either open), oldest first."""
        folders = {c.recorder.folder for c in self.cameras.values() if c.recorder is not None}
        found = [(segment, folder) for folder in folders for segment in RecordingIndex(folder).find(camera, start, end)]
        return [segment.as_json(folder) for segment, folder in sorted(found, key=lambda pair: pair[0].start)]

    def clip(self, camera: str, at: float) -> str | None:
        """The URL of the camera's closed segment that holds the moment ``at``, or None."""
        recorder = self.cameras[camera].recorder if camera in self.cameras else None
        found = recorder.index.find(camera, at, at) if recorder is not None else []
        return f"/api/recordings/{camera}/{Path(found[0].path).name}" if found else None

    def segment_file(self, camera: str, name: str) -> Path | None:
        """The file of the camera's indexed segment called ``name``: only the index's own files."""
        recorder = self.cameras[camera].recorder if camera in self.cameras else None
        rows = recorder.index.find(camera) if recorder is not None else []
        return next((recorder.folder / row.path for row in rows if Path(row.path).name == name), None)

    def close(self) -> None:
        for shared in self.inference.values():
            shared.close()


def model_name(model: Path) -> str:
    """``coco-ssd-mobilenet-v2`` for models/coco-ssd-mobilenet-v2/detect.tflite, else the file name."""
    return model.parent.name if model.name == "detect.tflite" else model.name


def _check_source(camera: CameraConfig) -> None:
    """A file that is not there is bad input, said now; a camera that is offline is retried."""
    spec = camera.source
    if is_stream_url(spec) or spec.isdigit() or spec.startswith("/dev/video"):
        return
    if not Path(spec).is_file():
        raise UserError(f"camera {camera.name}: source not found: {spec}")
    if not camera.loop:
        raise UserError(f"camera {camera.name}: {spec} is a file: add --loop (or 'loop: true') to play it as a camera")


def _check_labels(camera: CameraConfig, known: set[str]) -> None:
    """Classes and zone classes the model does not have are typos: say so before starting."""
    unknown = set(camera.classes or ()) - known
    if known and unknown:
        raise UserError(f"camera {camera.name}: classes {', '.join(sorted(unknown))} not in the model's labels")
    camera.privacy.check_classes(known, f"camera {camera.name}: privacy: classes")
    for shape in camera.shapes:
        try:
            shape.check_classes(known)
        except UserError as error:
            raise UserError(f"camera {camera.name}: {error}") from None
