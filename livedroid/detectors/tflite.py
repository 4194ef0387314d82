"""TFLite detectors: the Object Detection API's ``TFLite_Detection_PostProcess`` layout and the
Ultralytics ones (``livedroid.detectors.layouts``), recognised from the model's outputs.

A thin interpreter wrapper in the manner of tensorflow/examples' Raspberry Pi detector: the
layout gives the pre-processing (letterbox or stretch, input range, quantisation) and decodes the
outputs; this module maps boxes back to the frame, 0-based classes to label-map ids.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from livedroid.detections import Detections
from livedroid.detectors.base import Detector
from livedroid.errors import UserError, first_line
from livedroid.detectors.layouts import Layout, UnknownLayout, detect_layout
from livedroid.detectors.layouts.common import dequantize, fit, input_encoder
from livedroid.labels import find_labels, labels_for_classes
from livedroid.wording import plural

log = logging.getLogger(__name__)


def _import_interpreter() -> tuple[type, str]:
    """LiteRT first (numpy 2, fast int8 kernels), then tflite-runtime, then TensorFlow's copy."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError as error:
        _reraise_interrupt(error)
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError as error:
        _reraise_interrupt(error)
    try:
        import tensorflow as tf

        return tf.lite.Interpreter, "tensorflow.lite"
    except ImportError:
        raise ImportError(
            "no TFLite interpreter: install ai-edge-litert (or tflite-runtime)", name="ai_edge_litert"
        ) from None


def _reraise_interrupt(error: ImportError) -> None:
    """A Ctrl-C that lands while a native module loads can come back as an ImportError: it is the
    user's interrupt, not a missing runtime (seen once: the run fell back to TensorFlow's
    interpreter and ignored the Ctrl-C)."""
    cause = error
    while cause is not None:
        if isinstance(cause, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        cause = cause.__cause__ or cause.__context__


Interpreter, INTERPRETER_NAME = _import_interpreter()

class TFLiteDetector(Detector):
    """Run a ``.tflite`` detector of any known output layout (``layouts``); batches when the
    model's batch dimension resizes.

    The layout decides the pre-processing (letterbox or stretch, input range) and decodes the
    outputs; this class only feeds the interpreter and maps boxes back to frame pixels.
    """

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
        self.runtime = f"{INTERPRETER_NAME}, {plural(self.threads, 'thread')}"
        with _native_stderr_silenced():  # the runtime's "INFO: Created TensorFlow Lite XNNPACK delegate"
            self._interpreter = self._load(batch)
        self.labels = labels_for_classes(find_labels(model, labels), self.layout.num_classes, model.name)
        if batch > 1 and self.max_batch == 1:
            log.info("%s: batch dimension cannot be resized; running one frame per call", model.name)

    def _load(self, batch: int) -> object:
        """Create the interpreter, at ``batch`` if the model accepts it, else at 1."""
        for size in dict.fromkeys((batch, 1)):
            try:
                interpreter = Interpreter(model_path=str(self.model), num_threads=self.threads)
            except SystemError as error:  # tflite-runtime 2.14 was built against numpy 1
                raise UserError(
                    f"{INTERPRETER_NAME} cannot run with numpy {np.__version__} ({first_line(error)}): "
                    "install ai-edge-litert, or numpy<2 for tflite-runtime"
                ) from None
            except (ValueError, RuntimeError) as error:
                raise UserError(f"{self.model}: not a valid TFLite model ({first_line(error)})") from None
            details = interpreter.get_input_details()
            if len(details) != 1 or len(details[0]["shape"]) != 4 or details[0]["shape"][3] != 3:
                raise UserError(f"{self.model}: expected one image input [1, H, W, 3], got {_shapes(details)}")
            try:
                if size > 1:
                    interpreter.resize_tensor_input(details[0]["index"], [size, *details[0]["shape"][1:]])
                interpreter.allocate_tensors()
                self._input = interpreter.get_input_details()[0]
                self._outputs = {d["index"]: d for d in interpreter.get_output_details()}
                self.layout = _layout(interpreter, self.model, self.input_size[::-1])
                self._encode = input_encoder(self.layout.input_range, self._input)
                if size > 1:
                    interpreter.set_tensor(self._input["index"], np.zeros(self._input["shape"], self._input["dtype"]))
                    interpreter.invoke()
                    if interpreter.get_tensor(next(iter(self.layout.roles.values()))).shape[0] != size:
                        continue
            except (ValueError, RuntimeError) as error:
                if size > 1:
                    continue
                raise UserError(f"{self.model}: cannot run this model ({first_line(error)})") from None
            self.max_batch = size
            return interpreter
        raise AssertionError("unreachable: batch 1 either loads or raises")

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) the model takes."""
        return int(self._input["shape"][2]), int(self._input["shape"][1])

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        input_hw = self.input_size[::-1]
        results: list[Detections] = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            tensor = np.zeros(self._input["shape"], self._input["dtype"])
            transforms = []
            for slot, image in enumerate(chunk):
                fitted, transform = fit(image, input_hw, self.layout.letterbox)
                tensor[slot] = self._encode(fitted)
                transforms.append(transform)
            self._interpreter.set_tensor(self._input["index"], tensor)
            self._interpreter.invoke()
            out = {
                role: dequantize(self._interpreter.get_tensor(index), self._outputs[index])
                for role, index in self.layout.roles.items()
            }
            for slot, (image, transform) in enumerate(zip(chunk, transforms)):
                tensors = {role: t[slot] for role, t in out.items()}
                results.append(self.layout.detections(tensors, input_hw, transform, image.shape[1::-1], self.labels))
        return results


def _layout(interpreter: object, model: Path, input_hw: tuple[int, int]) -> Layout:
    """The model's output layout, from its output details, signature names and ops."""
    outputs = [dict(d) for d in interpreter.get_output_details()]
    signatures = interpreter.get_signature_list()
    if signatures:
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        names = {d["index"]: name for name, d in interpreter.get_signature_runner(key).get_output_details().items()}
        for detail in outputs:
            detail["signature_name"] = names.get(detail["index"], "")
    ops = interpreter._get_ops_details() if hasattr(interpreter, "_get_ops_details") else []
    try:
        return detect_layout(outputs, input_hw, ops)
    except UnknownLayout as error:
        raise UserError(f"{model}: {error}") from None


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
    return ", ".join(f"{d['name']} {[int(v) for v in d['shape']]}" for d in details)

