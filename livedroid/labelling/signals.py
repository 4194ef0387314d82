"""What makes a frame worth a label: each signal scores one frame in [0, 1] and says why.

A person labels where the model is unsure or wrong, and where the pictures are new. The signals:

- ``near_threshold``: a box scored close to the deployment threshold (a coin flip either way);
- ``flicker``: a box shown in the frames around this one but not in it, or the other way round,
  or one whose class flips between frames (video only);
- ``view_disagreement``: the model sees other boxes in the mirrored frame (or, with ``--tiles``,
  in the tiles) than in the frame itself: a prediction that does not survive a harmless change;
- novelty (in :mod:`livedroid.labelling.mining`): far from every frame already picked.

Which of them earn their place is measured in ``benchmarks/active_learning.py`` (README).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from livedroid.detections import Detections, box_iou_matrix, same_class_iou_matrix

#: Scores within this distance of the threshold count as near it.
NEAR_BAND = 0.2
#: Boxes overlapping this much (IoU) are one object, between views or between frames.
MATCH_IOU = 0.5
#: The smallest score the model is asked for: the near-threshold band reaches down to it.
FLOOR = 0.1


@dataclass
class FrameSignals:
    """The signals of one frame, each in [0, 1], and one short reason per signal that fired."""

    values: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def add(self, name: str, value: float, reason: str) -> None:
        if value > 0:
            self.values[name] = max(self.values.get(name, 0.0), round(float(value), 3))
            self.reasons.append(reason)

    @property
    def total(self) -> float:
        return float(sum(self.values.values()))


def near_threshold(detections: Detections, threshold: float, signals: FrameSignals) -> None:
    """The box nearest the threshold: 1 at the threshold, 0 at ``NEAR_BAND`` away."""
    if not len(detections):
        return
    distance = np.abs(detections.scores - threshold)
    nearest = int(np.argmin(distance))
    value = 1.0 - float(distance[nearest]) / NEAR_BAND
    score = float(detections.scores[nearest])
    side = "below" if score < threshold else "above"
    signals.add("near_threshold", value, f"{detections.labels[nearest]} {score:.2f}, just {side} {threshold:g}")


def unmatched(a: Detections, b: Detections, class_aware: bool = True) -> np.ndarray:
    """Which boxes of ``a`` have no box of ``b`` overlapping them by ``MATCH_IOU``."""
    if not len(a):
        return np.zeros(0, bool)
    if not len(b):
        return np.ones(len(a), bool)
    iou = (same_class_iou_matrix(a.xyxy, a.class_ids, b.xyxy, b.class_ids) if class_aware
           else box_iou_matrix(a.xyxy, b.xyxy))
    return iou.max(axis=1) < MATCH_IOU


def flicker(before: Detections, now: Detections, after: Detections, signals: FrameSignals) -> None:
    """Boxes at the threshold that blink: in the frames on both sides but not in this one (a
    near miss), in this one but in neither neighbour (a blip, often a false alarm), or matched
    by place to the frame before under another class (a class flip)."""
    both_sides = before.filter(~unmatched(before, after))
    dropped = both_sides.filter(unmatched(both_sides, now))
    blips = now.filter(unmatched(now, before) & unmatched(now, after))
    flips = []
    if len(now) and len(before):
        iou = box_iou_matrix(now.xyxy, before.xyxy)
        for row, column in zip(*np.nonzero(iou >= MATCH_IOU)):
            if now.class_ids[row] != before.class_ids[column]:
                flips.append(f"{before.labels[column]} → {now.labels[row]}")
    count = len(dropped) + len(blips) + len(flips)
    parts = ([f"{label} missing between frames" for label in dropped.labels]
             + [f"{label} only in this frame" for label in blips.labels]
             + [f"class flips {flip}" for flip in flips])
    signals.add("flicker", min(1.0, count / 2), "flicker: " + ", ".join(parts[:2]))


def view_disagreement(frame_view: Detections, other_view: Detections, other: str, signals: FrameSignals) -> None:
    """The share of boxes (both views, at the threshold) the other view does not confirm."""
    lonely_here = unmatched(frame_view, other_view)
    lonely_there = unmatched(other_view, frame_view)
    total = len(frame_view) + len(other_view)
    if not total or not (lonely_here.any() or lonely_there.any()):
        return
    value = (int(lonely_here.sum()) + int(lonely_there.sum())) / total
    names = [f"{label} not in the {other} view" for label in frame_view.filter(lonely_here).labels]
    names += [f"{label} only in the {other} view" for label in other_view.filter(lonely_there).labels]
    signals.add(f"{other}_disagrees", value, ", ".join(names[:2]))


@dataclass
class Views:
    """What the model saw of one frame, kept so that its signals can be scored again for another
    class set (the classes in use are known only once the footage is read)."""

    low: Detections  # every box from FLOOR (the tiles' with --tiles)
    plain: Detections | None = None  # with --tiles: the frame alone, at the threshold
    mirrored: Detections | None = None  # the mirrored frame's boxes at the threshold, unmirrored
    before: Detections | None = None  # the frames around it at the threshold (video only)
    after: Detections | None = None


def frame_signals(views: Views, threshold: float, classes: set[str] | None) -> FrameSignals:
    """The signals of one frame from the boxes of ``classes`` only: a class nobody labels (a
    toilet on a parking lot) drives no pick."""
    signals = FrameSignals()
    low = views.low.select(FLOOR, classes)
    confident = low.select(threshold)
    if views.plain is not None:
        view_disagreement(views.plain.select(threshold, classes), confident, "tiles", signals)
    if views.mirrored is not None:
        view_disagreement(confident, views.mirrored.select(threshold, classes), "mirror", signals)
    near_threshold(low.filter(np.abs(low.scores - threshold) < NEAR_BAND), threshold, signals)
    if views.after is not None:
        before = views.before.select(threshold, classes) if views.before is not None else Detections()
        flicker(before, confident, views.after.select(threshold, classes), signals)
    return signals


def mirrored(detections: Detections, width: int) -> Detections:
    """Boxes found on the mirrored image, in the coordinates of the original."""
    xyxy = detections.xyxy.copy()
    xyxy[:, [0, 2]] = width - detections.xyxy[:, [2, 0]]
    return Detections(xyxy, detections.scores, detections.class_ids, detections.labels)


# What a frame looks like: for novelty and the same-scene test ------------------------------------

#: Side of the grey thumbnail novelty is measured on.
THUMB = 24


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A small, contrast-normalised grey picture as a unit vector: the distance between two is
    how different the pictures look, whatever their brightness."""
    grey = cv2.cvtColor(cv2.resize(image, (THUMB, THUMB), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    vector = grey.astype(np.float32).ravel()
    vector -= vector.mean()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 1e-6 else vector


#: Side of the colour grid the same-scene test compares, and the blur before it (a fraction of the
#: width): coarse enough that noise and a small shift do not count, fine enough that a person
#: moving to another place does.
SCENE_GRID = 16
SCENE_BLUR = 1 / 64


def scene_colours(image: np.ndarray) -> np.ndarray:
    """The picture as a SCENE_GRID² grid of CIELAB colours (float32): what :func:`scene_distance` compares."""
    blurred = cv2.GaussianBlur(image, (0, 0), max(0.5, image.shape[1] * SCENE_BLUR))
    small = cv2.resize(blurred, (SCENE_GRID, SCENE_GRID), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)


def scene_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How differently two pictures look, 0-100: the mean colour difference of their grids, in
    percent of the full range."""
    return float(np.abs(a - b).mean()) / 255 * 100


def dhash(image: np.ndarray) -> int:
    """64-bit difference hash: near-identical pictures differ in a few bits."""
    grey = cv2.cvtColor(cv2.resize(image, (9, 8), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    bits = (grey[:, 1:] > grey[:, :-1]).ravel()
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
