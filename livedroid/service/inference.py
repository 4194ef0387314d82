"""Shared inference: one set of detector workers serves every camera that uses the same model.

Each camera's pipeline hands its frames to a ``CameraDetector`` (one inference thread per
camera, so at most one request per camera waits at a time). Workers take waiting requests in
arrival order, several cameras' frames in one call when the model's batch dimension allows it
(DeepStream's nvstreammux does the same round-robin). With one request per camera in the queue,
arrival order is round-robin: no camera waits behind another's backlog, none starves.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from livedroid.detections import Detections
from livedroid.detectors.base import Detector
from livedroid.stats import Stopwatch


@dataclass
class _Request:
    camera: str
    image: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    result: Detections | None = None
    #: ``taken`` when it was queued: how many frames went ahead of it is known when it is taken.
    queued_at: int = 0
    error: BaseException | None = None


class SharedInference:
    """Detector workers (one thread per interpreter) fed by all cameras of one model."""

    def __init__(self, detectors: list[Detector]) -> None:
        self.detectors = detectors
        self.labels = detectors[0].labels
        self.max_batch = min(detector.max_batch for detector in detectors)
        self.timer = Stopwatch()
        #: Frames inferred per camera: the fairness that tests and the stats check.
        self.served: dict[str, int] = {}
        self.calls = 0
        #: Frames taken by the workers, and the most taken ahead of any one frame while it waited:
        #: fairness, measured (with one frame per camera waiting, at most the other cameras').
        self.taken = 0
        self.most_taken_ahead = 0
        self._waiting: deque[_Request] = deque()
        self._changed = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._serve, args=(d,), name=f"livedroid-shared-inference-{n}", daemon=True)
            for n, d in enumerate(detectors)
        ]
        for thread in self._threads:
            thread.start()

    def for_camera(self, camera: str) -> "CameraDetector":
        return CameraDetector(self, camera)

    def infer(self, camera: str, image: np.ndarray) -> Detections:
        """Queue one frame and wait for its detections (empty once the service closes)."""
        request = _Request(camera, image)
        with self._changed:
            if self._closed:
                return Detections()
            request.queued_at = self.taken
            self._waiting.append(request)
            self._changed.notify()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result if request.result is not None else Detections()

    def _serve(self, detector: Detector) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
                batch = [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
                for request in batch:
                    self.most_taken_ahead = max(self.most_taken_ahead, self.taken - request.queued_at)
                    self.taken += 1
            with self.timer:
                try:
                    results = detector.detect([request.image for request in batch])
                except Exception as error:  # noqa: BLE001 - handed to the cameras that asked
                    results = [None] * len(batch)
                    for request in batch:
                        request.error = error
            with self._changed:
                self.calls += 1
                for request, result in zip(batch, results):
                    self.served[request.camera] = self.served.get(request.camera, 0) + 1
                    request.result = result
                    request.done.set()

    def stats(self) -> dict:
        return {
            "workers": len(self.detectors),
            "max_batch": self.max_batch,
            "calls": self.calls,
            "frames": self.taken,
            "mean_call_ms": round(self.timer.mean_ms, 1),
            "most_frames_taken_ahead": self.most_taken_ahead,
        }

    def close(self) -> None:
        """Stop the workers; frames still waiting get no detections."""
        with self._changed:
            self._closed = True
            for request in self._waiting:
                request.done.set()
            self._waiting.clear()
            self._changed.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)


class CameraDetector(Detector):
    """What one camera's pipeline sees as its detector: a door into the shared workers."""

    max_batch = 1

    def __init__(self, shared: SharedInference, camera: str) -> None:
        self.shared = shared
        self.camera = camera
        self.labels = shared.labels
        self.backend = shared.detectors[0].backend
        self.runtime = shared.detectors[0].runtime
        #: the model's input (width, height), for the motion gate's crops
        self.input_size = getattr(shared.detectors[0], "input_size", None)

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        return [self.shared.infer(self.camera, image) for image in images]
