"""TFLite detectors in the Object Detection API layout (``TFLite_Detection_PostProcess``).

A thin interpreter wrapper in the manner of tensorflow/examples' Raspberry Pi detector: private
pre-processing (resize, input quantization) and post-processing (output mapping, 0-based classes
to label-map ids, boxes clipped to the image).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from livedroid.detections import Detections
from livedroid.detectors.base import Detector
from livedroid.errors import UserError
from livedroid.labels import find_labels
from livedroid.pixels import unit_range
from livedroid.wording import plural

log = logging.getLogger(__name__)


def _import_interpreter() -> tuple[type, str]:
    """LiteRT first (numpy 2, fast int8 kernels), then tflite-runtime, then TensorFlow's copy."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf

        return tf.lite.Interpreter, "tensorflow.lite"
    except ImportError:
        raise ImportError(
            "no TFLite interpreter: install ai-edge-litert (or tflite-runtime)", name="ai_edge_litert"
        ) from None


Interpreter, INTERPRETER_NAME = _import_interpreter()

# Output roles in the post-process op's output order; signature names hold these keywords.
_ROLES = ("boxes", "classes", "scores", "count")
_ROLE_KEYWORDS = {"boxes": "box", "classes": "class", "scores": "score", "count": "num"}


class TFLiteDetector(Detector):
    """Run a ``.tflite`` SSD-style detector; batches when the model's batch dimension resizes."""

    backend = "tflite"

    def __init__(
        self,
        model: Path,
        *,
        labels: str | Path | None = None,
        threads: int | None = None,
        batch: int = 1,
    ) -> None:
        self.model = model
        self.threads = threads or os.cpu_count() or 1
        self.labels = find_labels(model, labels)
        self.runtime = f"{INTERPRETER_NAME}, {plural(self.threads, 'thread')}"
        with _native_stderr_silenced():  # the runtime's "INFO: Created TensorFlow Lite XNNPACK delegate"
            self._interpreter = self._load(batch)
        if batch > 1 and self.max_batch == 1:
            log.info("%s: batch dimension cannot be resized; running one frame per call", model.name)

    def _load(self, batch: int) -> object:
        """Create the interpreter, at ``batch`` if the model accepts it, else at 1."""
        for size in dict.fromkeys((batch, 1)):
            try:
                interpreter = Interpreter(model_path=str(self.model), num_threads=self.threads)
            except SystemError as error:  # tflite-runtime 2.14 was built against numpy 1
                raise UserError(
                    f"{INTERPRETER_NAME} cannot run with numpy {np.__version__} ({_first_line(error)}): "
                    "install ai-edge-litert, or numpy<2 for tflite-runtime"
                ) from None
            except (ValueError, RuntimeError) as error:
                raise UserError(f"{self.model}: not a valid TFLite model ({_first_line(error)})") from None
            details = interpreter.get_input_details()
            if len(details) != 1 or len(details[0]["shape"]) != 4 or details[0]["shape"][3] != 3:
                raise UserError(f"{self.model}: expected one image input [1, H, W, 3], got {_shapes(details)}")
            try:
                if size > 1:
                    interpreter.resize_tensor_input(details[0]["index"], [size, *details[0]["shape"][1:]])
                interpreter.allocate_tensors()
                self._input = interpreter.get_input_details()[0]
                self._outputs = _map_outputs(interpreter, self.model)
                if size > 1:
                    interpreter.set_tensor(self._input["index"], np.zeros(self._input["shape"], self._input["dtype"]))
                    interpreter.invoke()
                    if interpreter.get_tensor(self._outputs["boxes"]).shape[0] != size:
                        continue
            except (ValueError, RuntimeError) as error:
                if size > 1:
                    continue
                raise UserError(f"{self.model}: cannot run this model ({_first_line(error)})") from None
            self.max_batch = size
            return interpreter
        raise AssertionError("unreachable: batch 1 either loads or raises")

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) the model takes."""
        return int(self._input["shape"][2]), int(self._input["shape"][1])

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        results: list[Detections] = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            tensor = np.zeros(self._input["shape"], self._input["dtype"])
            for slot, image in enumerate(chunk):
                tensor[slot] = self._preprocess(image)
            self._interpreter.set_tensor(self._input["index"], tensor)
            self._interpreter.invoke()
            out = {role: self._interpreter.get_tensor(index) for role, index in self._outputs.items()}
            counts = np.asarray(out["count"]).reshape(-1)
            for slot, image in enumerate(chunk):
                results.append(
                    Detections.from_object_detection_api(
                        out["boxes"][slot],
                        out["scores"][slot],
                        out["classes"][slot],
                        counts[slot] if counts.size else 0,
                        width=image.shape[1],
                        height=image.shape[0],
                        labels=self.labels,
                    )
                )
        return results

    def _preprocess(self, image: np.ndarray) -> np.ndarray:
        """Resize to the input size and encode as the input expects.

        uint8 inputs take raw pixels (their quantization maps 0..255 onto [-1, 1]); int8 inputs are
        shifted by 128; float inputs get the Object Detection API's [-1, 1] normalization.
        """
        width, height = self.input_size
        if image.shape[1] != width or image.shape[0] != height:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        dtype = self._input["dtype"]
        if dtype == np.uint8:
            return image
        if dtype == np.int8:
            return (image.astype(np.int16) - 128).astype(np.int8)
        return unit_range(image)


def _map_outputs(interpreter: object, model: Path) -> dict[str, int]:
    """Tensor index of each output role, never by position in the output list.

    In order of trust: the ``TFLite_Detection_PostProcess`` op's own outputs (always boxes,
    classes, scores, count — whatever the exporter named them, e.g. ``output_0..3``); signature
    names (``detection_boxes`` …); tensor names ``TFLite_Detection_PostProcess:k``.
    """
    outputs = {detail["index"] for detail in interpreter.get_output_details()}
    ops = interpreter._get_ops_details() if hasattr(interpreter, "_get_ops_details") else []
    for op in ops:
        produced = [int(index) for index in op["outputs"]]
        if op["op_name"] == "TFLite_Detection_PostProcess" and len(produced) == 4 and set(produced) <= outputs:
            return dict(zip(_ROLES, produced))
    signatures = interpreter.get_signature_list()
    if signatures:
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        named = interpreter.get_signature_runner(key).get_output_details()
        found = {
            role: detail["index"]
            for role in _ROLES
            for name, detail in named.items()
            if _ROLE_KEYWORDS[role] in name.lower()
        }
        if len(found) == 4:
            return found
    found = {}
    for detail in interpreter.get_output_details():
        op, _, index = detail["name"].partition(":")
        if op.endswith("TFLite_Detection_PostProcess") and int(index or 0) < 4:
            found[_ROLES[int(index or 0)]] = detail["index"]
    if len(found) == 4:
        return found
    raise UserError(
        f"{model}: unknown output layout {_shapes(interpreter.get_output_details())}; expected the "
        "Object Detection API's 4 outputs of TFLite_Detection_PostProcess (boxes, classes, scores, count)"
    )


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Native code's writes to stderr (fd 2) discarded for the duration; Python's own errors
    still arrive as exceptions."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _shapes(details: list[dict]) -> str:
    return ", ".join(f"{d['name']} {list(d['shape'])}" for d in details)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
