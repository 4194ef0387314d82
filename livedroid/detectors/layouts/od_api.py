"""The Object Detection API's ``TFLite_Detection_PostProcess``: boxes, classes, scores, count.

NMS is inside the op; boxes are normalised (ymin, xmin, ymax, xmax); classes 0-based; float
inputs take the API's [-1, 1]; frames are stretched to the input (the API's fixed_shape_resizer).
"""

from __future__ import annotations

import numpy as np

DESCRIPTION = "(TFLite_Detection_PostProcess: boxes [1, N, 4], classes [1, N], scores [1, N], count [1])"
INPUT_RANGE = (-1.0, 1.0)
LETTERBOX = False
NMS = False

# Roles in the op's output order; signature names hold these keywords.
_ROLES = ("boxes", "classes", "scores", "count")
_ROLE_KEYWORDS = {"boxes": "box", "classes": "class", "scores": "score", "count": "num"}
_OP = "TFLite_Detection_PostProcess"


def match(outputs: list[dict], input_hw: tuple[int, int], ops: list[dict] = ()) -> dict[str, int] | None:
    """Tensor index of each role, never by position in the output list.

    In order of trust: the op's own outputs (always boxes, classes, scores, count — whatever the
    exporter named them, e.g. ``output_0..3``); signature names (``detection_boxes`` …); tensor
    names ``TFLite_Detection_PostProcess:k``; last, shapes (count [1], boxes [1, N, 4], two
    [1, N]), where scores and classes are then told apart by their values in :func:`decode`
    (EfficientDet-Lite from Model Maker writes them in another order).
    """
    indices = {d["index"] for d in outputs}
    for op in ops:
        produced = [int(index) for index in op["outputs"]]
        if op["op_name"] == _OP and len(produced) == 4 and set(produced) <= indices:
            return dict(zip(_ROLES, produced))
    for key in ("signature_name", "name"):
        found = {role: d["index"] for role in _ROLES for d in outputs if _ROLE_KEYWORDS[role] in d.get(key, "").lower()}
        if len(found) == 4 and len(set(found.values())) == 4:
            return found
    found = {}
    for d in outputs:
        op, _, k = d["name"].partition(":")
        if op.endswith(_OP) and k.isdigit() and int(k) < 4:
            found[_ROLES[int(k)]] = d["index"]
    if len(found) == 4:
        return found
    return _match_by_shape(outputs)


def _match_by_shape(outputs: list[dict]) -> dict[str, int] | None:
    if len(outputs) != 4:
        return None
    shapes = {d["index"]: [int(v) for v in d["shape"]] for d in outputs}
    count = [i for i, s in shapes.items() if len(s) == 1]
    boxes = [i for i, s in shapes.items() if len(s) == 3 and s[2] == 4]
    pair = [i for i, s in shapes.items() if len(s) == 2]
    if len(count) != 1 or len(boxes) != 1 or len(pair) != 2:
        return None
    n = shapes[boxes[0]][1]
    if any(shapes[i][1] != n for i in pair):
        return None
    return {"boxes": boxes[0], "count": count[0], "pair_a": pair[0], "pair_b": pair[1]}


def num_classes(outputs: list[dict]) -> int | None:
    """Not in the shapes (the op's options hold it)."""
    return None


def decode(tensors: dict[str, np.ndarray], input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    count = np.asarray(tensors["count"]).reshape(-1)
    n = min(int(count[0]) if count.size else 0, len(tensors["boxes"]))
    if "pair_a" in tensors:
        scores, classes = _scores_and_classes(tensors["pair_a"][:n], tensors["pair_b"][:n])
    else:
        scores, classes = tensors["scores"][:n], tensors["classes"][:n]
    in_h, in_w = input_hw
    boxes = np.clip(tensors["boxes"][:n], 0.0, 1.0)[:, [1, 0, 3, 2]] * np.array([in_w, in_h, in_w, in_h], np.float32)
    return boxes, scores, np.rint(classes).astype(np.int32)


def _scores_and_classes(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores, classes) of two unnamed [N] outputs: classes are whole numbers, scores lie in
    [0, 1]. Where both could be either (every value 0 or 1), the first is taken as the scores.
    "Whole" allows for dequantised int8 (2.0000002)."""
    whole_a, whole_b = (bool(np.all(np.abs(v - np.rint(v)) < 1e-3)) for v in (a, b))
    a_is_classes = whole_a and (not whole_b or a.max(initial=0) > 1) and not (whole_b and b.max(initial=0) > 1)
    return (b, a) if a_is_classes else (a, b)
