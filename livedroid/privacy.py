"""Privacy masking: the boxes of chosen classes and fixed polygons are blurred, pixelated or filled
in the frame itself, before anything draws or writes it.

Because the stage replaces ``frame.image`` on the writer thread ahead of every other stage, what
it hides is burned into everything downstream: the annotated video, the live view, snapshots and
``serve``'s recordings (Frigate's users asked for that for years; the GDPR asks it of many
cameras). Detection itself still sees the clear frame, so masking costs no accuracy.

Masking errs on the side of hiding: boxes from a lower score than the displayed ones
(``min_score``), grown by ``PAD`` on each side, and held for ``hold_frames`` frames after the
detector last saw them there, so one missed detection does not unmask a face for a frame.
"""

from __future__ import annotations

import argparse
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.stages import Stage
from livedroid.wording import plural

if TYPE_CHECKING:  # the pipeline draws with OpenCV: `livedroid --help` declares these options without it
    from livedroid.analytics.shapes import Shape
    from livedroid.pipeline import Selection

STYLES = ("blur", "pixelate", "fill")
PAST = {"blur": "blurred", "pixelate": "pixelated", "fill": "filled"}
#: Boxes of the masked classes count from this score, below a typical display threshold: a face
#: the detector is unsure of is still hidden.
MIN_SCORE = 0.3
#: Frames a masked box stays masked after its last detection (0.2 s at 25 fps).
HOLD_FRAMES = 5
#: Share of a box's width and height added on each side: detector boxes are tight.
PAD = 0.1
#: Cells across the shorter side of a pixelated box: too coarse to recognise a face.
PIXEL_CELLS = 8
FILL_RGB = (0, 0, 0)


@dataclass(frozen=True)
class PrivacySettings:
    """What to hide: ``classes`` (label names) and ``masks`` (polygons), in a ``style``."""

    classes: frozenset[str] = frozenset()
    masks: tuple[Shape, ...] = ()
    style: str = "blur"
    min_score: float = MIN_SCORE
    hold_frames: int = HOLD_FRAMES

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise UserError(f"privacy style {self.style!r}: choose {', '.join(STYLES)}")
        if not 0 < self.min_score < 1:
            raise UserError(f"privacy min_score {self.min_score}: give a score between 0 and 1")
        if self.hold_frames < 0:
            raise UserError(f"privacy hold_frames {self.hold_frames}: give 0 or more frames")

    @property
    def enabled(self) -> bool:
        return bool(self.classes or self.masks)

    @classmethod
    def from_options(cls, blur: str | None, masks: list[str], style: str = "blur") -> "PrivacySettings":
        """From ``--blur person,face``, ``--mask NAME=x1,y1,…`` (repeatable) and ``--privacy-style``."""
        classes = frozenset(name.strip() for name in (blur or "").split(",") if name.strip())
        return cls(classes, tuple(parse_mask(text) for text in masks), style)

    def check_classes(self, known: set[str], where: str = "--blur") -> None:
        """Refuse class names the model does not have (when it has labels at all)."""
        unknown = self.classes - known
        if known and unknown:
            raise UserError(f"{where}: class {', '.join(sorted(unknown))} not in the model's labels")

    def widen(self, selection: Selection) -> Selection:
        """The selection the pipeline must make so this stage sees every box it hides: its lower
        score and its classes besides the ones kept for display."""
        classes = None if selection.classes is None else set(selection.classes) | set(self.classes)
        min_score = min(selection.min_score, self.min_score) if self.classes else selection.min_score
        return replace(selection, min_score=min_score, classes=classes)


def parse_mask(text: str) -> Shape:
    """``NAME=x1,y1,x2,y2,x3,y3,…``: a fixed polygon to hide, in pixels or 0-1 fractions."""
    from livedroid.analytics.shapes import parse_shape

    shape = parse_shape("mask", text)
    if shape.classes:
        raise UserError(f"--mask {shape.name}: a mask hides every pixel inside it; it takes no classes")
    if len(shape.points) < 3:
        raise UserError(f"--mask {shape.name}: a mask needs at least 3 points (x,y pairs), got {len(shape.points)}")
    return shape


@dataclass
class PrivacyMask(Stage):
    """Hides ``settings`` in each frame, then hands on the detections ``keep`` selects (the ones
    the run displays, tracks and records)."""

    settings: PrivacySettings
    keep: Selection
    masked_boxes: int = 0
    masked_frames: int = 0
    _recent: deque = field(default_factory=deque)  # (frame index, (K, 4) boxes)
    _polygons: list[np.ndarray] | None = None
    _size: tuple[int, int] | None = None

    def update(self, detections: Detections, frame: Frame) -> Detections:
        image = frame.image
        boxes = self._boxes_to_hide(detections, frame.index)
        polygons = self._placed(image.shape[1], image.shape[0])
        if len(boxes) or polygons:
            image = image.copy()  # the reader's buffer may be shared; never draw into it
            for polygon in polygons:
                _hide_polygon(image, polygon, self.settings.style)
            for box in boxes:
                _hide_box(image, box, self.settings.style)
            frame.image = image
            self.masked_frames += 1
        return self.keep.apply(detections)

    def summary(self) -> list[str]:
        hidden = [*sorted(self.settings.classes), *(f"mask {m.name}" for m in self.settings.masks)]
        return [f"privacy: {', '.join(hidden)} {PAST[self.settings.style]} in {plural(self.masked_frames, 'frame')}"
                f" ({plural(self.masked_boxes, 'detection')})"]

    def _boxes_to_hide(self, detections: Detections, index: int) -> np.ndarray:
        """This frame's boxes of the hidden classes, padded, plus those of the last held frames."""
        if not self.settings.classes:
            return np.zeros((0, 4), np.float32)
        wanted = np.array([label in self.settings.classes for label in detections.labels], bool)
        wanted &= detections.scores >= self.settings.min_score
        current = _padded(detections.xyxy[wanted])
        self.masked_boxes += len(current)
        self._recent.append((index, current))
        while self._recent and index - self._recent[0][0] > self.settings.hold_frames:
            self._recent.popleft()
        return np.concatenate([boxes for _, boxes in self._recent])

    def _placed(self, width: int, height: int) -> list[np.ndarray]:
        if self._polygons is None or self._size != (width, height):
            self._polygons = [mask.in_pixels(width, height).round().astype(np.int32) for mask in self.settings.masks]
            self._size = (width, height)
        return self._polygons


def _padded(xyxy: np.ndarray) -> np.ndarray:
    size = np.concatenate([xyxy[:, 2:] - xyxy[:, :2]] * 2, axis=1)
    return xyxy + size * PAD * np.array([-1, -1, 1, 1], np.float32)


def _hide_box(image: np.ndarray, box: np.ndarray, style: str) -> None:
    height, width = image.shape[:2]
    x1, y1 = (int(max(0, np.floor(v))) for v in box[:2])
    x2, y2 = int(min(width, np.ceil(box[2]))), int(min(height, np.ceil(box[3])))
    if x2 > x1 and y2 > y1:
        image[y1:y2, x1:x2] = _hidden(image[y1:y2, x1:x2], style)


def _hide_polygon(image: np.ndarray, polygon: np.ndarray, style: str) -> None:
    import cv2

    x, y, w, h = cv2.boundingRect(polygon)
    region = image[y : y + h, x : x + w]
    if not region.size:
        return
    inside = np.zeros(region.shape[:2], np.uint8)
    cv2.fillPoly(inside, [polygon - (x, y)], 1)
    region[inside.astype(bool)] = _hidden(region, style)[inside.astype(bool)]


def _hidden(region: np.ndarray, style: str) -> np.ndarray:
    """``region`` made unrecognisable: a blur whose kernel scales with the region (a fixed small
    kernel leaves a large face readable), coarse pixels, or a flat fill."""
    import cv2

    height, width = region.shape[:2]
    if style == "fill":
        return np.broadcast_to(np.array(FILL_RGB, np.uint8), region.shape).copy()
    if style == "pixelate":
        scale = min(1.0, PIXEL_CELLS / min(height, width))
        cells = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(region, cells, interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    kernel = max(3, (min(height, width) // 3) | 1)
    return cv2.GaussianBlur(region, (kernel, kernel), 0)


def with_privacy(settings: PrivacySettings, selection: Selection, stages: list[Stage]) -> tuple[Selection, list[Stage]]:
    """The pipeline's selection and stages with privacy masking first, when ``settings`` hides
    anything: the one way ``run``, ``serve`` and ``batch`` add it."""
    if not settings.enabled:
        return selection, stages
    return settings.widen(selection), [PrivacyMask(settings, keep=selection), *stages]


def add_privacy_options(parser: argparse.ArgumentParser) -> None:
    """``--blur``, ``--mask`` and ``--privacy-style`` (``run`` and ``batch``; ``serve`` per camera in its YAML)."""
    group = parser.add_argument_group(
        "privacy (burned into every output: video, window, snapshots; detection still sees the clear frame)"
    )
    group.add_argument("--blur", metavar="A,B", help=f"hide the boxes of these classes, e.g. person (from score {MIN_SCORE}, "
                       f"padded, held {HOLD_FRAMES} frames after a miss)")
    group.add_argument("--mask", action="append", default=[], metavar="NAME=X,Y,X,Y,X,Y",
                       help="hide a fixed polygon, pixels or 0-1 fractions (repeatable), e.g. a neighbour's window")
    group.add_argument("--privacy-style", choices=STYLES, default="blur", help="how hidden pixels look (default blur)")


def privacy_from_args(args: argparse.Namespace) -> PrivacySettings:
    return PrivacySettings.from_options(args.blur, args.mask, args.privacy_style)


def privacy_from_document(value: object, where: str) -> PrivacySettings:
    """A camera's ``privacy: {classes: [person], masks: {window: [[x, y], …]}, style: fill}`` in
    ``serve --config``; each mistake is one line naming the camera and the key."""
    from livedroid.documents import check_keys, class_names, wrong

    if value is None:
        return PrivacySettings()
    if not isinstance(value, dict):
        raise wrong(where, "privacy", "a mapping with classes, masks and style", value)
    where = f"{where}: privacy"
    check_keys(value, ["classes", "masks", "style"], where)
    masks = value.get("masks") or {}
    if not isinstance(masks, dict):
        raise wrong(where, "masks", "a mapping of mask names to [[x, y], …]", masks)
    shapes = []
    for name, points in masks.items():
        pairs = points if isinstance(points, list) else None
        if not pairs or not all(isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p) for p in pairs):
            raise wrong(where, f"masks: {name}", "[[x, y], …] numbers", points)
        try:
            shapes.append(parse_mask(f"{name}=" + ",".join(repr(float(v)) for pair in pairs for v in pair)))
        except UserError as error:
            raise UserError(f"{where}: {str(error).removeprefix('--')}") from None
    style = value.get("style", "blur")
    if style not in STYLES:
        raise wrong(where, "style", " or ".join(STYLES), style)
    return PrivacySettings(frozenset(class_names(value.get("classes"), where) or ()), tuple(shapes), style)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
