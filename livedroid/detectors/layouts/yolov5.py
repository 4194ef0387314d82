"""Raw YOLOv5 head (Ultralytics' YOLOv5 export): one [1, N, 5 + C] output, N = 3 anchors x grid
cells, each row cx, cy, w, h, objectness, C class scores; no NMS. Coordinates normalised or in
input pixels (``common.NORMALISED_MAX``); float inputs [0, 1]; frames letterboxed."""

from __future__ import annotations

import numpy as np

from livedroid.detectors.layouts.common import SCORE_FLOOR, grid_cell_counts, to_input_pixels, xywh_to_xyxy

DESCRIPTION = "([1, N, 5 + C], N = 3 x grid cells: cx, cy, w, h, objectness, class scores)"
INPUT_RANGE = (0.0, 1.0)
LETTERBOX = True
NMS = True


def match(outputs: list[dict], input_hw: tuple[int, int], ops: list[dict] = ()) -> dict[str, int] | None:
    if len(outputs) != 1 or len(outputs[0]["shape"]) != 3:
        return None
    _, rows, columns = (int(v) for v in outputs[0]["shape"])
    if columns > 5 and rows in {3 * n for n in grid_cell_counts(input_hw)}:
        return {"raw": outputs[0]["index"]}
    return None


def num_classes(outputs: list[dict]) -> int | None:
    return int(outputs[0]["shape"][2]) - 5


def decode(tensors: dict[str, np.ndarray], input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    raw = tensors["raw"]
    rows = raw[raw[:, 4] >= SCORE_FLOOR]  # objectness first: few rows pass it
    class_scores = rows[:, 5:] * rows[:, 4:5]
    classes = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(rows)), classes]
    keep = scores >= SCORE_FLOOR
    boxes = to_input_pixels(xywh_to_xyxy(rows[keep, :4]), raw[:, :2], input_hw)
    return boxes, scores[keep], classes[keep].astype(np.int32)
