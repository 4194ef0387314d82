"""``--motion``: infer only where something moved (Frigate's idea), boxes carried in between.

Motion is measured on a small grey copy of each frame against a running average, so swaying
leaves and sensor noise fade into the background while a walking person does not. Every box the
gate reports has a constant-velocity Kalman filter (the tracker's motion model), so a box that is
not inferred in a frame is carried to where its object has moved. Per frame:

- a **full pass** on the first frame, every ``full_every`` frames, after a global light change,
  when much of the picture moves at once (a moving camera, a crowd), and when the crops would
  cost more than it;
- **crops at once** where motion appears away from every known object (something came in), at
  most every other frame;
- **crops every** ``detect_every`` **frames** around known objects that move (their motion model
  carries them in between, as Frigate's ``detect.fps`` below the camera's rate does);
- **nothing** where only still objects stir (a person swaying while standing), nor on a still
  frame: still objects are checked by the full passes;
- crops are twice the moving area's size and at least the model's input (small objects keep
  their pixels); their detections replace those inside them.

The gate keeps state from frame to frame, so it needs frames in order: one inference worker.
"""

from __future__ import annotations

import cv2
import numpy as np

from livedroid.detections import Detections, same_class_iou_matrix
from livedroid.detectors.base import Detector
from livedroid.regions.tiles import class_aware_nms
from livedroid.settings import DEFAULT_DETECT_EVERY, DEFAULT_FULL_EVERY, DEFAULT_THRESHOLD
from livedroid.tracking.bytetrack import greedy_match
from livedroid.tracking.kalman import BoxKalman

#: Least width of the grey copy motion is measured on (160-319 pixels).
MOTION_WIDTH = 160
#: Grey-level difference from the background that counts as motion.
MOTION_THRESHOLD = 25
#: Weight of each new frame in the running average: the background adapts in ~1/alpha frames.
BACKGROUND_ALPHA = 0.2
#: Share of the picture changing at once that counts as a light change (a full pass).
LIGHT_CHANGE = 0.5
#: Motion spread over more than this share of the picture (the box around all of it) gets a full
#: pass every frame: a moving camera or a busy scene, where carried boxes would fall behind.
BUSY = 0.5
#: A crop is this many times the moving area's side (and at least the model's input): detectors
#: find objects that fill part of their input, with some scene around them.
CONTEXT = 2.0
#: Each crop costs a model run, like a full pass: more crops than this, or crops covering more
#: than ``MAX_CROP_SHARE`` of the frame, and the whole frame is inferred instead.
MAX_CROPS = 2
MAX_CROP_SHARE = 0.5
#: An object whose motion model moves it less than this share of its size a frame is still.
STILL_SPEED = 0.01
#: Motion this close to an object (a share of its size) belongs to it: arms and shadows.
REACH = 0.25
#: Motion away from every carried object is inferred at once, but at most every this many frames.
NEWS_EVERY = 2
#: Least IoU for a new box to continue a carried one (and inherit its velocity).
CONTINUE_IOU = 0.3


class MotionGate:
    """Moving areas of each frame, as boxes in the frame's pixels; ``light_change`` after each call."""

    def __init__(self) -> None:
        self._background: np.ndarray | None = None
        self.light_change = False

    def update(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        # grey first, then area averaging by an integer factor: 0.2 ms a 768x432 frame, against
        # 1 ms for the colour frame shrunk at any ratio
        factor = max(1, width // MOTION_WIDTH)
        small_w, small_h = width // factor, max(1, height // factor)
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:small_h * factor, :small_w * factor]
        small = cv2.resize(grey, (small_w, small_h), interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(small, (5, 5), 0).astype(np.float32)
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
        return np.array([(x, y, x + w, y + h) for x, y, w, h in boxes], np.float32).reshape(-1, 4) * factor


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


class CarriedBoxes:
    """The gate's latest detections, each with a Kalman filter that moves it between inferences."""

    def __init__(self) -> None:
        self.detections = Detections()
        self._kalman = BoxKalman()
        self._seen = np.zeros(0, int)  # inferences each box was found in

    def advance(self, motion: np.ndarray, width: int, height: int) -> Detections:
        """One frame later: every box where its motion model puts it (inside the frame); a box
        with no ``motion`` near it has stopped and stays where it is."""
        self._kalman.stop(~_overlaps(_grown(self.detections.xyxy, REACH), motion).any(axis=1))
        self._kalman.predict(1)
        if len(self.detections):
            limits = np.array([width, height, width, height], np.float32)
            xyxy = np.clip(self._kalman.xyxy.astype(np.float32), 0, limits)
            self.detections = Detections(xyxy, self.detections.scores, self.detections.class_ids, self.detections.labels)
        return self.detections

    def replace(self, found: Detections) -> None:
        """Inferred boxes in place of the carried ones; each that continues a carried box (same
        class, overlapping) corrects that box's filter, which so learns the object's velocity."""
        iou = same_class_iou_matrix(self.detections.xyxy, self.detections.class_ids, found.xyxy, found.class_ids)
        pair_rows, pair_columns = greedy_match(iou, CONTINUE_IOU)
        rows = np.full(len(found), -1)
        rows[pair_columns] = pair_rows
        continued = rows >= 0
        self._kalman.correct(rows[continued], found.xyxy[continued])
        self._kalman.keep(rows[continued])
        self._kalman.add(found.xyxy[~continued])
        self._seen = np.concatenate([self._seen[rows[continued]] + 1, np.ones(int((~continued).sum()), int)])
        self.detections = Detections.merge([found.filter(continued), found.filter(~continued)])

    def young(self) -> np.ndarray:
        """Which boxes were found only once: their velocity is not known yet."""
        return self._seen < 2

    def moving(self) -> np.ndarray:
        """Which boxes are young or move by their motion model (position or size) more than
        ``STILL_SPEED`` of their size a frame."""
        size = np.maximum(self._kalman.mean[:, 2], self._kalman.mean[:, 3])
        speed = np.abs(self._kalman.mean[:, 4:]).max(axis=1)
        return self.young() | (speed > STILL_SPEED * size)


class MotionGatedDetector(Detector):
    """Wraps a detector: full passes now and then, crops where something moved, boxes carried.

    ``min_score``: the detections that count as objects (motion near them is theirs).
    ``calls`` counts model runs and ``frames`` the frames seen, for "model runs a frame".
    """

    def __init__(self, detector: Detector, full_every: int = DEFAULT_FULL_EVERY, detect_every: int = DEFAULT_DETECT_EVERY,
                 min_score: float = DEFAULT_THRESHOLD) -> None:
        self.detector = detector
        self.full_every = max(1, full_every)
        self.detect_every = max(1, detect_every)
        self.min_score = min_score
        self.backend = detector.backend
        self.runtime = f"{detector.runtime}, motion-gated"
        self.labels = detector.labels
        self.max_batch = 1
        width, height = getattr(detector, "input_size", None) or (320, 320)
        self.crop = (width, height)
        self.gate = MotionGate()
        self.calls = 0
        self.frames = 0
        self._carried = CarriedBoxes()
        self._last_full = self._last_inferred = 0

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> Detections:
        height, width = image.shape[:2]
        motion = self.gate.update(image)
        self.frames += 1
        carried = self._carried.advance(motion, width, height)
        if (self.frames == 1 or self.gate.light_change or _spread(motion, width, height) > BUSY
                or self.frames - self._last_full >= self.full_every):
            return self._full(image)
        confident = carried.scores >= self.min_score
        objects = carried.filter(confident)
        reach = _grown(objects.xyxy, REACH)
        moving, young = self._carried.moving()[confident], self._carried.young()[confident]
        swaying = _contains(reach[~moving], motion).any(axis=0)  # still objects stir: not worth a run
        # moving objects are carried and checked every detect_every frames, once their motion
        # model has been fed twice (a new box's velocity, growth included, is not known yet)
        carried_on = _overlaps(motion, reach[moving & ~young]).any(axis=1)
        carried_on &= ~_overlaps(motion, reach[young]).any(axis=1)
        since = self.frames - self._last_inferred
        # anything else is news (something came in or set off): inferred at once, but not in
        # two frames running (the trail a leaving object leaves in the background would else
        # cost a run a frame until the background has adapted)
        wanted = ~swaying & np.where(carried_on, since >= self.detect_every, since >= NEWS_EVERY)
        if not wanted.any():
            return carried
        # the wanted motion grows to the objects it touches, so that they are inferred whole
        touched = objects.xyxy[_overlaps(reach, motion[wanted]).any(axis=1)]
        regions = _merged(np.concatenate([motion[wanted], touched]))
        crops = list(dict.fromkeys(self._crop_around(region, objects.xyxy, width, height) for region in regions))
        area = sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in crops)
        if len(crops) > MAX_CROPS or area > MAX_CROP_SHARE * width * height:
            return self._full(image)
        found = self.detector.detect([image[y1:y2, x1:x2] for x1, y1, x2, y2 in crops])
        self.calls += len(crops)
        self._last_inferred = self.frames
        outside = np.ones(len(carried), bool)
        for crop in crops:
            outside &= ~_inside(carried.xyxy, crop)
        fresh = [result.shifted(crop[0], crop[1]) for crop, result in zip(crops, found)]
        self._carried.replace(class_aware_nms(Detections.merge([carried.filter(outside), *fresh])))
        return self._carried.detections

    def _crop_around(self, region: np.ndarray, objects: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
        """The crop around ``region``, grown until every object whose centre it holds lies wholly in
        it: a detector misses the half of an object a crop cuts, which would replace the whole."""
        for _ in range(len(objects) + 1):
            crop = crop_around(region, self.crop, width, height)
            cut = _inside(objects, crop) & ~_contains(np.array([crop], np.float32), objects)[0]
            if not cut.any():
                break
            region = _enclosing(np.concatenate([region[None], objects[cut]]))
        return crop

    def _full(self, image: np.ndarray) -> Detections:
        self.calls += 1
        self._last_full = self._last_inferred = self.frames
        self._carried.replace(self.detector.detect([image])[0])
        return self._carried.detections


def _grown(boxes: np.ndarray, share: float) -> np.ndarray:
    """``boxes`` grown on each side by ``share`` of their width and height."""
    margin = (boxes[:, 2:] - boxes[:, :2]) * share
    return np.concatenate([boxes[:, :2] - margin, boxes[:, 2:] + margin], axis=1)


def _enclosing(boxes: np.ndarray) -> np.ndarray:
    """The box around all ``boxes`` (at least one)."""
    return np.concatenate([boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)])


def _spread(boxes: np.ndarray, width: int, height: int) -> float:
    """Share of the picture in the box around all ``boxes``."""
    if not len(boxes):
        return 0.0
    x1, y1, x2, y2 = _enclosing(boxes)
    return float((x2 - x1) * (y2 - y1) / (width * height))


def _contains(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(len(outer), len(inner)): which boxes of ``outer`` hold which of ``inner`` wholly."""
    return ((outer[:, None, 0] <= inner[None, :, 0]) & (outer[:, None, 1] <= inner[None, :, 1])
            & (inner[None, :, 2] <= outer[:, None, 2]) & (inner[None, :, 3] <= outer[:, None, 3]))


def _overlaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)): which boxes of ``a`` share some area (or an edge) with which of ``b``."""
    return ((a[:, None, 0] <= b[None, :, 2]) & (b[None, :, 0] <= a[:, None, 2])
            & (a[:, None, 1] <= b[None, :, 3]) & (b[None, :, 1] <= a[:, None, 3]))


def _merged(boxes: np.ndarray) -> np.ndarray:
    """Overlapping boxes joined into their bounding box, until none overlap."""
    boxes = [np.asarray(box, np.float32) for box in boxes]
    merged: list[np.ndarray] = []
    while boxes:
        box = boxes.pop()
        while True:
            touching = [other for other in boxes if _overlaps(box[None], other[None])[0, 0]]
            if not touching:
                break
            boxes = [other for other in boxes if not _overlaps(box[None], other[None])[0, 0]]
            box = _enclosing(np.stack([box, *touching]))
        merged.append(box)
    return np.array(merged, np.float32).reshape(-1, 4)
