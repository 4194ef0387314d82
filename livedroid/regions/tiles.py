"""``--tiles``: a large frame inferred as overlapping tiles plus the whole frame.

A 300x300 model sees a 1080p frame shrunk 6x, so people a few tens of pixels tall vanish. Tiles
keep their pixels (as SAHI and Frigate's regions do); the whole frame is still inferred, for
objects larger than a tile. An object must fit in a tile: by default tiles are twice the model's
input, which on a 3072x1728 mosaic of real frames found all people 280-390 px tall and 87 % of
those 95-200 px tall (model-sized tiles: 80 % and 100 %, at 4x the cost; benchmarks/tiles_mosaic.py). The
results are merged:

- a box from a tile that touches one of the tile's inner edges (an edge that is not the frame's)
  is a piece of a cut object: dropped when a whole box of its class covers most of it (the
  overlapping neighbour tile or the whole frame saw the object whole), else kept, as the best view;
- all go through class-aware non-maximum suppression (livedroid's one NMS, ``detections.class_aware_nms``).
"""

from __future__ import annotations

import numpy as np

from livedroid.detections import Detections, class_aware_nms
from livedroid.detectors.base import Detector

#: Default tile side in model inputs: objects up to about a tile tall are found whole.
TILE_SCALE = 2
#: Fraction of a tile shared with its neighbour: objects up to this size lie whole in one tile.
OVERLAP = 0.25
#: Boxes of one class overlapping more than this (IoU) are one object.
NMS_IOU = 0.5
#: Pixels from an inner tile edge within which a box counts as cut.
EDGE_PX = 2
#: Share of a cut piece's area inside a whole box of its class for the piece to be dropped.
COVERED = 0.5


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


def merge_overlaps(detections: Detections, iou: float = NMS_IOU) -> Detections:
    """The best-scoring box of each group of same-class boxes overlapping more than ``iou``, in
    their original order."""
    if len(detections) < 2:
        return detections
    mask = np.zeros(len(detections), bool)
    mask[class_aware_nms(detections.xyxy, detections.scores, detections.class_ids, iou)] = True
    return detections.filter(mask)


def _cut(boxes: np.ndarray, tile: tuple[int, int, int, int], width: int, height: int) -> np.ndarray:
    """Which boxes (in frame coordinates) touch an inner edge of ``tile``."""
    x1, y1, x2, y2 = tile
    cut = np.zeros(len(boxes), bool)
    if x1 > 0:
        cut |= boxes[:, 0] <= x1 + EDGE_PX
    if y1 > 0:
        cut |= boxes[:, 1] <= y1 + EDGE_PX
    if x2 < width:
        cut |= boxes[:, 2] >= x2 - EDGE_PX
    if y2 < height:
        cut |= boxes[:, 3] >= y2 - EDGE_PX
    return cut


def _covered(pieces: Detections, whole: Detections) -> np.ndarray:
    """Which pieces lie mostly (``COVERED``) inside a whole box of the same class."""
    if not len(pieces) or not len(whole):
        return np.zeros(len(pieces), bool)
    a, b = pieces.xyxy[:, None, :], whole.xyxy[None, :, :]
    inter = np.prod(np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None), axis=-1)
    area = np.prod(np.clip(pieces.xyxy[:, 2:] - pieces.xyxy[:, :2], 1e-6, None), axis=-1)
    same_class = pieces.class_ids[:, None] == whole.class_ids[None, :]
    return ((inter / area[:, None] >= COVERED) & same_class).any(axis=1)


class TiledDetector(Detector):
    """Wraps a detector: each image becomes the whole frame plus its tiles, merged into one result.

    Frames no larger than a tile are inferred once, as without tiles. ``calls`` counts the
    model runs (one per tile and frame), for the summary.
    """

    def __init__(self, detector: Detector, tile: tuple[int, int] | None = None, overlap: float = OVERLAP) -> None:
        self.detector = detector
        # TFLite models have a fixed input size; SavedModels resize inside, so take a common one
        width, height = getattr(detector, "input_size", None) or (320, 320)
        self.tile = tile or (TILE_SCALE * width, TILE_SCALE * height)
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
        placed = [found.shifted(tile[0], tile[1]) for tile, found in zip(tiles, results[1:])]
        cut = np.concatenate([np.zeros(len(results[0]), bool)]
                             + [_cut(found.xyxy, tile, width, height) for tile, found in zip(tiles, placed)])
        merged = Detections.merge([results[0], *placed])
        whole = merge_overlaps(merged.filter(~cut))
        pieces = merged.filter(cut)
        return merge_overlaps(Detections.merge([whole, pieces.filter(~_covered(pieces, whole))]))
