"""Output layouts of detectors (TFLite and ONNX), recognised from the model's own outputs.

Each layout is one module, registered here by key the way detector backends are, with:

- ``DESCRIPTION``: its outputs, for the "unknown output layout" error;
- ``INPUT_RANGE``: what pixel values 0 and 255 become in a float input;
- ``LETTERBOX``: keep the aspect ratio with grey padding (Ultralytics) rather than stretch;
- ``NMS``: whether livedroid must run class-aware NMS on the decoded boxes;
- ``ANY_SIZE`` (optional, default False): frames go in at their own size where the model's
  input size is free (the graph resizes them itself);
- ``match(outputs, input_hw, ops) -> roles | None``: output tensor index of each role;
- ``num_classes(outputs) -> int | None``: the class count, where the shapes say it;
- ``decode(tensors, input_hw) -> (xyxy, scores, classes)``: one image's boxes in input pixels,
  scores, and 0-based class indices.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from livedroid.detections import Detections
from livedroid.detectors.layouts.common import raw_output_nms, to_image

#: key → module; tried in this order (the SavedModel's exporter-only outputs, then the Object
#: Detection API's op, are the surest signs).
LAYOUTS: dict[str, str] = {
    "saved_model": "livedroid.detectors.layouts.saved_model",
    "od_api": "livedroid.detectors.layouts.od_api",
    "yolov5": "livedroid.detectors.layouts.yolov5",
    "yolov8": "livedroid.detectors.layouts.yolov8",
    "end_to_end": "livedroid.detectors.layouts.end_to_end",
}

__all__ = ["LAYOUTS", "Layout", "UnknownLayout", "detect_layout"]


class UnknownLayout(ValueError):
    """No layout matches the outputs; the message lists them and the known layouts (one line)."""


@dataclass(frozen=True)
class Layout:
    """A recognised layout: its module and which output tensor plays each role."""

    module: ModuleType
    roles: dict[str, int]
    num_classes: int | None

    @property
    def key(self) -> str:
        return self.module.__name__.rsplit(".", 1)[1]

    @property
    def input_range(self) -> tuple[float, float]:
        return self.module.INPUT_RANGE

    @property
    def letterbox(self) -> bool:
        return self.module.LETTERBOX

    @property
    def nms(self) -> bool:
        return self.module.NMS

    @property
    def any_size(self) -> bool:
        return getattr(self.module, "ANY_SIZE", False)

    def decode(self, tensors: dict[str, np.ndarray], input_hw: tuple[int, int]):
        return self.module.decode(tensors, input_hw)

    def detections(
        self,
        tensors: dict[str, np.ndarray],
        input_hw: tuple[int, int],
        transform: np.ndarray,
        image_wh: tuple[int, int],
        labels: dict[int, str],
    ) -> Detections:
        """One image's outputs (float, by role) as Detections in its own pixels: decoded, through
        class-aware NMS where the model has none, 0-based classes as label-map ids."""
        xyxy, scores, classes = self.decode(tensors, input_hw)
        if self.nms:
            kept = raw_output_nms(xyxy, scores, classes)
            xyxy, scores, classes = xyxy[kept], scores[kept], classes[kept]
        ids = classes.astype(np.int32) + 1
        return Detections(
            xyxy=to_image(xyxy, transform, *image_wh),
            scores=np.asarray(scores, np.float32),
            class_ids=ids,
            labels=[labels.get(int(i), str(int(i))) for i in ids],
        )


def detect_layout(outputs: list[dict], input_hw: tuple[int, int], ops: list[dict] = ()) -> Layout:
    """The first layout of :data:`LAYOUTS` whose ``match`` accepts the interpreter's output details.

    ``input_hw`` is the model's input (height, width); ``ops`` the interpreter's op details, where
    it gives them. Raises :class:`UnknownLayout` when none matches.
    """
    modules = [importlib.import_module(name) for name in LAYOUTS.values()]
    for module in modules:
        roles = module.match(outputs, input_hw, ops)
        if roles is not None:
            return Layout(module, roles, module.num_classes([d for d in outputs if d["index"] in roles.values()]))
    shapes = ", ".join(f"{d['name']} {[int(v) for v in d['shape']]}" for d in outputs)
    known = "; ".join(f"{key} {module.DESCRIPTION}" for key, module in zip(LAYOUTS, modules))
    raise UnknownLayout(f"unknown output layout: {shapes}; known: {known}")
