"""``--tiles``: a large frame inferred as overlapping model-sized tiles plus the whole frame.

A 300x300 model sees a 1080p frame shrunk 6x, so people a few tens of pixels tall vanish. Tiles
the size of the model's input keep every pixel (as SAHI and Frigate's regions do); the whole
frame is still inferred, for objects larger than a tile. The results are merged:

- a box from a tile that touches one of the tile's inner edges (an edge that is not the frame's)
  is a cut object: dropped, since the overlapping neighbour tile or the whole frame sees it whole;
- the rest go through class-aware non-maximum suppression (OpenCV's ``NMSBoxesBatched``).
"""

from __future__ import annotations

import cv2
import numpy as np

from livedroid.detections import Detections
from livedroid.detectors.base import Detector

#: Fraction of a tile shared with its neighbour: objects up to this size lie whole in one tile.
OVERLAP = 0.25
#: Boxes of one class overlapping more than this (IoU) are one object.
NMS_IOU = 0.5
#: Pixels from an inner tile edge within which a box counts as cut.
EDGE_PX = 2


def _starts(length: int, tile: int, overlap: float) -> list[int]:
    """Tile origins along one axis: evenly spread, first at 0, last flush with the end."""
    if length <= tile:
        return [0]
    count = int(np.ceil((length - tile) / (tile * (1 - overlap)))) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_grid(width: int, height: int, tile: tuple[int, int], overlap: float = OVERLAP) -> list[tuple[int, int, int, int]]:
    """(x1, y1, x2, y2) of overlapping tiles of size ``tile`` (width, height) covering the frame."""
    tile_w, tile_h = min(tile[0], width), min(tile[1], height)
    return [
        (x, y, x + tile_w, y + tile_h)
        for y in _starts(height, tile_h, overlap)
        for x in _starts(width, tile_w, overlap)
    ]


def class_aware_nms(detections: Detections, iou: float = NMS_IOU) -> Detections:
    """The best-scoring box of each group of same-class boxes overlapping more than ``iou``."""
    if len(detections) < 2:
        return detections
    xywh = np.column_stack([detections.xyxy[:, :2], detections.xyxy[:, 2:] - detections.xyxy[:, :2]])
    kept = cv2.dnn.NMSBoxesBatched(xywh.tolist(), detections.scores.tolist(), detections.class_ids.tolist(), 0.0, iou)
    mask = np.zeros(len(detections), bool)
    mask[np.asarray(kept, int).reshape(-1)] = True
    return detections.filter(mask)


def _uncut(detections: Detections, tile: tuple[int, int, int, int], width: int, height: int) -> Detections:
    """Drop the boxes (in frame coordinates) that touch an inner edge of ``tile``."""
    x1, y1, x2, y2 = tile
    boxes = detections.xyxy
    cut = np.zeros(len(detections), bool)
    if x1 > 0:
        cut |= boxes[:, 0] <= x1 + EDGE_PX
    if y1 > 0:
        cut |= boxes[:, 1] <= y1 + EDGE_PX
    if x2 < width:
        cut |= boxes[:, 2] >= x2 - EDGE_PX
    if y2 < height:
        cut |= boxes[:, 3] >= y2 - EDGE_PX
    return detections.filter(~cut)


class TiledDetector(Detector):
    """Wraps a detector: each image becomes the whole frame plus its tiles, merged into one result.

    Frames no larger than a tile are inferred once, as without tiles. ``calls`` counts the
    model runs (one per tile and frame), for the summary.
    """

    def __init__(self, detector: Detector, tile: tuple[int, int] | None = None, overlap: float = OVERLAP) -> None:
        self.detector = detector
        # TFLite models have a fixed input size; SavedModels resize inside, so take a common one
        self.tile = tile or getattr(detector, "input_size", None) or (640, 640)
        self.overlap = overlap
        self.backend = detector.backend
        self.runtime = f"{detector.runtime}, tiles {self.tile[0]}x{self.tile[1]}"
        self.labels = detector.labels
        self.max_batch = 1  # each frame is already a batch of tiles
        self.calls = 0

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> Detections:
        height, width = image.shape[:2]
        tiles = tile_grid(width, height, self.tile, self.overlap)
        if len(tiles) == 1:
            self.calls += 1
            return self.detector.detect([image])[0]
        crops = [image] + [image[y1:y2, x1:x2] for x1, y1, x2, y2 in tiles]
        results = self.detector.detect(crops)
        self.calls += len(crops)
        parts = [results[0]] + [
            _uncut(found.shifted(tile[0], tile[1]), tile, width, height) for tile, found in zip(tiles, results[1:])
        ]
        return class_aware_nms(Detections.merge(parts))
