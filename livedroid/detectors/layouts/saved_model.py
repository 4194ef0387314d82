"""The Object Detection API's SavedModel outputs, as ``tf2onnx`` keeps them in an ONNX graph
(``livedroid train export --onnx``): ``detection_boxes`` [B, N, 4] (normalised ymin, xmin,
ymax, xmax), ``detection_classes`` (label-map ids, 1-based), ``detection_scores``,
``num_detections``, beside the exporter's raw outputs. NMS and resizing are inside the graph:
it takes uint8 frames of any size (``ANY_SIZE``) as they are.
"""

from __future__ import annotations

import numpy as np

DESCRIPTION = "(SavedModel: detection_boxes, detection_classes, detection_scores, num_detections, raw_detection_boxes)"
INPUT_RANGE = (0.0, 255.0)
LETTERBOX = False
NMS = False
ANY_SIZE = True

_ROLES = {"boxes": "detection_boxes", "classes": "detection_classes", "scores": "detection_scores", "count": "num_detections"}
#: Outputs only the API's exporter writes: a TFLite graph's signature has the four names too,
#: but its classes are 0-based (``od_api``).
_EXPORTER_ONLY = ("raw_detection_boxes", "detection_multiclass_scores")


def match(outputs: list[dict], input_hw: tuple[int, int], ops: list[dict] = ()) -> dict[str, int] | None:
    names = {d.get("signature_name") or d["name"]: d["index"] for d in outputs}
    if all(name in names for name in _ROLES.values()) and any(name in names for name in _EXPORTER_ONLY):
        return {role: names[name] for role, name in _ROLES.items()}
    return None


def num_classes(outputs: list[dict]) -> int | None:
    """Not in the four outputs' shapes."""
    return None


def decode(tensors: dict[str, np.ndarray], input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    count = np.asarray(tensors["count"]).reshape(-1)
    n = min(int(count[0]) if count.size else 0, len(tensors["boxes"]))
    in_h, in_w = input_hw
    boxes = np.clip(tensors["boxes"][:n], 0.0, 1.0)[:, [1, 0, 3, 2]] * np.array([in_w, in_h, in_w, in_h], np.float32)
    return boxes, tensors["scores"][:n], np.rint(tensors["classes"][:n]).astype(np.int32) - 1  # ids → 0-based
