"""``Detections``: the one result type that flows from detectors to annotators and sinks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def box_iou_matrix(a: np.ndarray | list[list[float]], b: np.ndarray | list[list[float]]) -> np.ndarray:
    """Intersection over union of every box of ``a`` (N, 4) with every box of ``b`` (M, 4): (N, M).

    Any corner layout works — (x1, y1, x2, y2) or the Object Detection API's (ymin, xmin, ymax,
    xmax) — as long as both sides use the same one.
    """
    a = np.asarray(a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(b, np.float64).reshape(1, -1, 4)
    inter = np.prod(np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None), axis=-1)
    area = lambda boxes: np.prod(np.clip(boxes[..., 2:] - boxes[..., :2], 0, None), axis=-1)  # noqa: E731
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def same_class_iou_matrix(a: np.ndarray, a_classes: np.ndarray, b: np.ndarray, b_classes: np.ndarray) -> np.ndarray:
    """``box_iou_matrix(a, b)``, 0 between boxes of different classes: what matching detections
    to detections, or to tracks, compares."""
    iou = box_iou_matrix(a, b)
    iou[np.asarray(a_classes)[:, None] != np.asarray(b_classes)[None, :]] = 0.0
    return iou


def box_iou(box: np.ndarray | list[float], boxes: np.ndarray | list[list[float]]) -> np.ndarray:
    """Intersection over union of one box with each of ``boxes`` (any corner layout, see above)."""
    return box_iou_matrix(np.asarray(box).reshape(1, 4), boxes)[0]



def class_aware_nms(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float,
                    max_kept: int | None = None) -> np.ndarray:
    """Indices of the boxes per-class non-maximum suppression keeps, best first: livedroid's one NMS
    (tiles merge with it, raw model outputs are decoded with it).

    OpenCV's ``NMSBoxesBatched`` (>= 4.7) over a greedy numpy NMS: on 8400 boxes 241 vs 1901 ms
    when hardly any overlap, 8.5 vs 27.6 ms jittered around 20 objects (2 shared x86 cores), the
    same boxes kept.
    """
    import cv2  # here, not above: `livedroid --help` imports this module and needs no OpenCV

    if not len(scores):
        return np.zeros(0, np.int64)
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    kept = cv2.dnn.NMSBoxesBatched(xywh, np.asarray(scores, np.float32), np.asarray(class_ids, np.int32), 0.0, iou,
                                   1.0, max_kept or 0)
    return np.asarray(kept, np.int64).reshape(-1)


def best_same_class(box, class_id: int, boxes, class_ids) -> tuple[int, float] | None:
    """(index, IoU) of the box among ``boxes`` of the same class that overlaps ``box`` most, or
    None when no box has that class: the one rule livedroid uses to say two models found the same
    object (callers compare the IoU with their own threshold)."""
    class_ids = np.asarray(class_ids).reshape(-1)
    if not (class_ids == class_id).any():
        return None
    overlaps = np.where(class_ids == class_id, box_iou(box, boxes), -1.0)
    best = int(overlaps.argmax())
    return best, float(overlaps[best])

@dataclass
class Detections:
    """Boxes found in one frame, as parallel arrays.

    ``xyxy`` holds pixel corners (x1, y1, x2, y2), float32 (N, 4), clipped to the image;
    ``class_ids`` are label-map ids (1-based, as in the Object Detection API's label_map.pbtxt);
    ``labels`` are their names; ``tracker_id`` (int, (N,)) is set by the tracker, else None.
    """

    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))
    labels: list[str] = field(default_factory=list)
    tracker_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        lengths = {"xyxy": len(self.xyxy), "scores": len(self.scores), "class_ids": len(self.class_ids),
                   "labels": len(self.labels)}
        if len(set(lengths.values())) > 1 or np.shape(self.xyxy)[1:] != (4,):
            shapes = ", ".join(f"{name} {np.shape(value)}" for name, value in
                               (("xyxy", self.xyxy), ("scores", self.scores), ("class_ids", self.class_ids)))
            raise ValueError(f"Detections needs N boxes (N, 4), N scores, N class ids and N labels; got {shapes}, "
                             f"{len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def from_object_detection_api(
        cls,
        boxes: np.ndarray,
        scores: np.ndarray,
        classes: np.ndarray,
        count: int | np.ndarray,
        *,
        width: int,
        height: int,
        labels: dict[int, str],
        class_offset: int = 1,
    ) -> "Detections":
        """One image's Object Detection API outputs (``detection_boxes``, ``_scores``,
        ``_classes``, ``num_detections``), in pixels of a ``width`` x ``height`` image.

        ``class_offset`` turns the model's classes into label-map ids: 1 where they are 0-based
        (a model's own ``postprocess``, TFLite's post-process op), 0 where the export already
        added it (SavedModels from ``exporter_main_v2``).
        """
        count = min(int(np.asarray(count).reshape(-1)[0]), len(scores))
        return cls.from_normalized(
            np.asarray(boxes)[:count],
            np.asarray(scores)[:count],
            np.rint(np.asarray(classes)[:count]).astype(np.int32) + class_offset,
            width=width,
            height=height,
            labels=labels,
        )

    @classmethod
    def from_normalized(
        cls,
        boxes_yxyx: np.ndarray,
        scores: np.ndarray,
        class_ids: np.ndarray,
        width: int,
        height: int,
        labels: dict[int, str],
    ) -> "Detections":
        """Build from Object Detection API outputs: normalized (ymin, xmin, ymax, xmax) boxes."""
        boxes = np.clip(np.asarray(boxes_yxyx, np.float32).reshape(-1, 4), 0.0, 1.0)
        xyxy = boxes[:, [1, 0, 3, 2]] * np.array([width, height, width, height], np.float32)
        ids = np.asarray(class_ids).astype(np.int32).reshape(-1)
        return cls(
            xyxy=xyxy,
            scores=np.asarray(scores, np.float32).reshape(-1),
            class_ids=ids,
            labels=[labels.get(int(i), str(int(i))) for i in ids],
        )

    @classmethod
    def merge(cls, parts: list["Detections"]) -> "Detections":
        """The detections of ``parts`` one after another (e.g. of the tiles of one frame)."""
        if not parts:
            return cls()
        tracked = all(part.tracker_id is not None for part in parts)
        return cls(
            np.concatenate([part.xyxy for part in parts]).astype(np.float32),
            np.concatenate([part.scores for part in parts]).astype(np.float32),
            np.concatenate([part.class_ids for part in parts]).astype(np.int32),
            [label for part in parts for label in part.labels],
            np.concatenate([part.tracker_id for part in parts]) if tracked else None,
        )

    def shifted(self, dx: float, dy: float) -> "Detections":
        """The same detections moved by (dx, dy) pixels: from a crop's coordinates to the frame's."""
        offset = np.array([dx, dy, dx, dy], np.float32)
        return Detections(self.xyxy + offset, self.scores, self.class_ids, self.labels, self.tracker_id)

    def filter(self, mask: np.ndarray) -> "Detections":
        """The detections where ``mask`` is true, in order."""
        mask = np.asarray(mask, bool)
        return Detections(
            self.xyxy[mask],
            self.scores[mask],
            self.class_ids[mask],
            [label for label, keep in zip(self.labels, mask) if keep],
            None if self.tracker_id is None else self.tracker_id[mask],
        )

    def select(
        self,
        min_score: float = 0.0,
        classes: set[str] | None = None,
        max_detections: int | None = None,
    ) -> "Detections":
        """Apply a score threshold, a class allow-list (by label name) and a count limit.

        Keeps the highest scores first when the count limit cuts.
        """
        mask = self.scores >= min_score
        if classes is not None:
            mask &= np.array([label in classes for label in self.labels], bool)
        kept = self.filter(mask)
        if max_detections is not None and len(kept) > max_detections:
            order = np.argsort(-kept.scores, kind="stable")[:max_detections]
            keep = np.zeros(len(kept), bool)
            keep[order] = True
            kept = kept.filter(keep)
        return kept

    def to_records(self, width: int, height: int) -> list[dict]:
        """JSON-ready dicts: pixel and normalized (x1, y1, x2, y2) boxes, class id, label, score,
        and ``track_id`` once tracked."""
        scale = np.array([width, height, width, height], np.float32)
        records = [
            {
                "class_id": int(class_id),
                "label": label,
                "score": round(float(score), 4),
                "box": [round(float(v), 1) for v in box],
                "box_normalized": [round(float(v), 5) for v in box / scale],
            }
            for box, score, class_id, label in zip(self.xyxy, self.scores, self.class_ids, self.labels)
        ]
        if self.tracker_id is not None:
            for record, track in zip(records, self.tracker_id):
                record["track_id"] = int(track)
        return records
