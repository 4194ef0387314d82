"""NMS inside the model (Ultralytics YOLOv10, YOLO26, ``nms=True`` exports): one [1, K, 6]
output, each row x1, y1, x2, y2, score, class, unused rows scored 0. Coordinates normalised or
in input pixels (``common.NORMALISED_MAX``); float inputs [0, 1]; frames letterboxed."""

from __future__ import annotations

import numpy as np

from livedroid.detectors.layouts.common import SCORE_FLOOR, to_input_pixels

DESCRIPTION = "([1, K, 6]: x1, y1, x2, y2, score, class)"
INPUT_RANGE = (0.0, 1.0)
LETTERBOX = True
NMS = False


def match(outputs: list[dict], input_hw: tuple[int, int], ops: list[dict] = ()) -> dict[str, int] | None:
    if len(outputs) == 1 and len(outputs[0]["shape"]) == 3 and int(outputs[0]["shape"][2]) == 6:
        return {"rows": outputs[0]["index"]}
    return None


def num_classes(outputs: list[dict]) -> int | None:
    """Not in the shape: classes are values."""
    return None


def decode(tensors: dict[str, np.ndarray], input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = tensors["rows"]
    kept = rows[rows[:, 4] >= SCORE_FLOOR]
    boxes = to_input_pixels(kept[:, :4], rows[:, :4], input_hw)
    return boxes, kept[:, 4], np.rint(kept[:, 5]).astype(np.int32)
