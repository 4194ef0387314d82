"""``--motion``: infer only where something moved (Frigate's idea), with a full pass now and then.

Motion is measured on a small grey copy of each frame against a running average, so swaying
leaves and sensor noise fade into the background while a walking person does not. Then, per frame:

- a full-frame pass every ``full_every`` frames, after a global light change (most of the picture
  changed at once), and when the crops would cost more than it;
- else, where something moved: crops around the moving areas (grown to the objects they touch),
  twice their size and at least the model's input (small objects keep their pixels), inferred;
  their detections replace those inside the crops;
- boxes outside the crops, and every box on a still frame, are carried from the last inference.

The gate keeps state from frame to frame, so it needs frames in order: one inference worker.
"""

from __future__ import annotations

import cv2
import numpy as np

from livedroid.detections import Detections
from livedroid.detectors.base import Detector
from livedroid.regions.tiles import class_aware_nms

#: Width of the grey copy motion is measured on.
MOTION_WIDTH = 160
#: Grey-level difference from the background that counts as motion.
MOTION_THRESHOLD = 25
#: Weight of each new frame in the running average: the background adapts in ~1/alpha frames.
BACKGROUND_ALPHA = 0.2
#: Share of the picture changing at once that counts as a light change (a full pass).
LIGHT_CHANGE = 0.5
#: A crop is this many times the moving area's side (and at least the model's input): detectors
#: find objects that fill part of their input, with some scene around them.
CONTEXT = 2.0
#: Each crop costs a model run, like a full pass: more crops than this, or crops covering more
#: than ``MAX_CROP_SHARE`` of the frame, and the whole frame is inferred instead (a moving camera
#: then costs one run a frame, as without the gate).
MAX_CROPS = 2
MAX_CROP_SHARE = 0.5


class MotionGate:
    """Moving areas of each frame, as boxes in the frame's pixels; ``light_change`` after each call."""

    def __init__(self) -> None:
        self._background: np.ndarray | None = None
        self.light_change = False

    def update(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        scale = MOTION_WIDTH / width
        small = cv2.resize(image, (MOTION_WIDTH, max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (5, 5), 0).astype(np.float32)
        if self._background is None:
            self._background = grey
            self.light_change = True
            return np.zeros((0, 4), np.float32)
        moving = (cv2.absdiff(grey, self._background) > MOTION_THRESHOLD).astype(np.uint8)
        cv2.accumulateWeighted(grey, self._background, BACKGROUND_ALPHA)
        self.light_change = moving.mean() > LIGHT_CHANGE
        moving = cv2.dilate(moving, np.ones((5, 5), np.uint8))
        contours, _ = cv2.findContours(moving, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = [cv2.boundingRect(contour) for contour in contours]
        return np.array([(x, y, x + w, y + h) for x, y, w, h in boxes], np.float32).reshape(-1, 4) / scale


def crop_around(box: np.ndarray, size: tuple[int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """A square-ish crop ``CONTEXT`` times ``box``, at least ``size`` (width, height), inside the frame."""
    x1, y1, x2, y2 = box
    side = CONTEXT * max(x2 - x1, y2 - y1)
    crop_w, crop_h = min(width, round(max(size[0], side))), min(height, round(max(size[1], side)))
    left = int(np.clip(round((x1 + x2 - crop_w) / 2), 0, width - crop_w))
    top = int(np.clip(round((y1 + y2 - crop_h) / 2), 0, height - crop_h))
    return left, top, left + crop_w, top + crop_h


def _inside(boxes: np.ndarray, crop: tuple[int, int, int, int]) -> np.ndarray:
    """Which boxes have their centre inside ``crop``."""
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return (cx >= crop[0]) & (cx < crop[2]) & (cy >= crop[1]) & (cy < crop[3])


class MotionGatedDetector(Detector):
    """Wraps a detector: full passes now and then, crops where something moved, boxes carried.

    ``calls`` counts model runs and ``frames`` the frames seen, for "model runs a frame".
    """

    def __init__(self, detector: Detector, full_every: int = 10) -> None:
        self.detector = detector
        self.full_every = max(1, full_every)
        self.backend = detector.backend
        self.runtime = f"{detector.runtime}, motion-gated"
        self.labels = detector.labels
        self.max_batch = 1
        width, height = getattr(detector, "input_size", None) or (320, 320)
        self.crop = (width, height)
        self.gate = MotionGate()
        self.calls = 0
        self.frames = 0
        self._last = Detections()

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> Detections:
        height, width = image.shape[:2]
        motion = self.gate.update(image)
        self.frames += 1
        if not len(motion) and not self.gate.light_change and (self.frames - 1) % self.full_every:
            return self._last
        # a moving area grows to the objects it touches, so that they are inferred whole
        touched = [box for box in self._last.xyxy if _overlaps(box, motion).any()]
        regions = _merged(np.concatenate([motion, np.array(touched, np.float32).reshape(-1, 4)]))
        crops = list(dict.fromkeys(crop_around(box, self.crop, width, height) for box in regions))
        area = sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in crops)
        if (self.gate.light_change or (self.frames - 1) % self.full_every == 0
                or len(crops) > MAX_CROPS or area > MAX_CROP_SHARE * width * height):
            self.calls += 1
            self._last = self.detector.detect([image])[0]
            return self._last
        found = self.detector.detect([image[y1:y2, x1:x2] for x1, y1, x2, y2 in crops])
        self.calls += len(crops)
        carried = np.ones(len(self._last), bool)
        for crop in crops:
            carried &= ~_inside(self._last.xyxy, crop)
        fresh = [result.shifted(crop[0], crop[1]) for crop, result in zip(crops, found)]
        self._last = class_aware_nms(Detections.merge([self._last.filter(carried), *fresh]))
        return self._last


def _overlaps(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Which of ``boxes`` share some area (or an edge) with ``box``."""
    return (box[0] <= boxes[:, 2]) & (boxes[:, 0] <= box[2]) & (box[1] <= boxes[:, 3]) & (boxes[:, 1] <= box[3])


def _merged(boxes: np.ndarray) -> np.ndarray:
    """Overlapping boxes joined into their bounding box, until none overlap."""
    boxes = [np.asarray(box, np.float32) for box in boxes]
    merged: list[np.ndarray] = []
    while boxes:
        box = boxes.pop()
        while True:
            touching = [other for other in boxes if _overlaps(box, other[None])[0]]
            if not touching:
                break
            boxes = [other for other in boxes if not _overlaps(box, other[None])[0]]
            group = np.stack([box, *touching])
            box = np.concatenate([group[:, :2].min(axis=0), group[:, 2:].max(axis=0)])
        merged.append(box)
    return np.array(merged, np.float32).reshape(-1, 4)
