"""Raw anchor-free head (Ultralytics YOLOv8, YOLO11): one [1, 4 + C, N] output, N grid cells
(8400 at 640), each column cx, cy, w, h, C class scores; no objectness, no NMS. Told from YOLOv5
by its transposed shape: the long axis is last. Coordinates normalised (Ultralytics' TFLite
export) or in input pixels (``common.NORMALISED_MAX``); float inputs [0, 1]; frames letterboxed."""

from __future__ import annotations

import numpy as np

from livedroid.detectors.layouts.common import SCORE_FLOOR, grid_cell_counts, to_input_pixels, xywh_to_xyxy

DESCRIPTION = "([1, 4 + C, N], N = grid cells: cx, cy, w, h, class scores)"
INPUT_RANGE = (0.0, 1.0)
LETTERBOX = True
NMS = True


def match(outputs: list[dict], input_hw: tuple[int, int], ops: list[dict] = ()) -> dict[str, int] | None:
    if len(outputs) != 1 or len(outputs[0]["shape"]) != 3:
        return None
    _, channels, columns = (int(v) for v in outputs[0]["shape"])
    if 4 < channels < columns and columns in grid_cell_counts(input_hw):
        return {"raw": outputs[0]["index"]}
    return None


def num_classes(outputs: list[dict]) -> int | None:
    return int(outputs[0]["shape"][1]) - 4


def decode(tensors: dict[str, np.ndarray], input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    raw = tensors["raw"]
    best = raw[4:].max(axis=0)
    keep = np.flatnonzero(best >= SCORE_FLOOR)
    classes = raw[4:, keep].argmax(axis=0).astype(np.int32)
    boxes = to_input_pixels(xywh_to_xyxy(raw[:4, keep].T), raw[:2], input_hw)
    return boxes, best[keep], classes
