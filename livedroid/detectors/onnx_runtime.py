"""ONNX Runtime detectors: the layouts of ``livedroid.detectors.layouts`` (Ultralytics' ONNX
exports, TFLite files converted by tf2onnx) and the Object Detection API SavedModel's outputs
(``livedroid train export --onnx``), on the execution provider ``--device`` picks.

As with TFLite, the layout gives the pre-processing and decodes the outputs; this module feeds
the session (NHWC or NCHW, float or quantised input, fixed or free size and batch).
"""

from __future__ import annotations

import ast
import logging
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort  # first: a missing extra is named by its main package
import onnx
from onnx import numpy_helper

from livedroid.detections import Detections
from livedroid.detectors.base import Detector, same_size_runs
from livedroid.detectors.layouts import Layout, UnknownLayout, detect_layout
from livedroid.detectors.layouts.common import dequantize, fit, input_encoder
from livedroid.errors import UserError, first_line
from livedroid.labels import find_labels, labels_for_classes, parse_metadata, parse_names
from livedroid.wording import plural

log = logging.getLogger(__name__)

#: --device → (execution providers in order of preference, what brings the first one).
DEVICES: dict[str, tuple[tuple[str, ...], str]] = {
    "cpu": (("CPUExecutionProvider",), "pip install onnxruntime"),
    "cuda": (("CUDAExecutionProvider", "CPUExecutionProvider"), "pip install onnxruntime-gpu"),
    "tensorrt": (("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"), "pip install onnxruntime-gpu (and TensorRT)"),
    "openvino": (("OpenVINOExecutionProvider", "CPUExecutionProvider"), "pip install onnxruntime-openvino"),
    "coreml": (("CoreMLExecutionProvider", "CPUExecutionProvider"), "pip install onnxruntime (its macOS build)"),
}
#: What ``--device auto`` tries, best first. TensorRT only when asked: it builds its engine for
#: minutes at the first start.
AUTO = ("cuda", "openvino", "coreml", "cpu")
#: Input size of a model whose own is free and whose metadata does not say (Ultralytics' default).
FREE_INPUT_SIZE = 640
#: Ops between a quantised tensor and its (De)QuantizeLinear that keep its scale (TFLite int8
#: concatenates tensors of one scale).
_MOVES_VALUES = {"Reshape", "Squeeze", "Unsqueeze", "Identity", "Transpose", "Flatten", "Gather", "Slice", "Pad", "Concat"}
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}

ort.set_default_logger_severity(3)  # errors only: its warnings are not the user's business


class OnnxDetector(Detector):
    """Run a ``.onnx`` detector of any known layout; batches when the batch dimension is free."""

    backend = "onnx"

    def __init__(
        self,
        model: Path,
        *,
        labels: str | Path | None = None,
        threads: int | None = None,
        batch: int = 1,
        device: str | None = None,
    ) -> None:
        self.model = model
        self.device = device or "auto"
        key, providers = _device(self.device)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(model), options, providers=list(providers))
        except Exception as error:  # onnxruntime raises its own unexported exception types
            raise UserError(f"{model}: not a valid ONNX model ({first_line(error)})") from None
        if providers[0] not in self._session.get_providers():
            raise UserError(f"--device {self.device}: {providers[0]} failed to start ({DEVICES[key][1]})")
        self.runtime = f"onnxruntime {ort.__version__}, {self._session.get_providers()[0]}, {plural(options.intra_op_num_threads, 'thread')}"
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or 3 not in (inputs[0].shape[1], inputs[0].shape[3]):
            raise UserError(f"{model}: expected one image input [1, H, W, 3] or [1, 3, H, W], got {_shapes(inputs)}")
        self._input = inputs[0]
        self._channels_first = inputs[0].shape[1] == 3 and inputs[0].shape[3] != 3
        graph = onnx.load(str(model), load_external_data=False).graph
        quantization = _quantization(graph)
        dtype = _DTYPES.get(self._input.type)
        if dtype is None:
            raise UserError(f"{model}: input of type {self._input.type}; expected float, float16, uint8 or int8")
        self._dtype = dtype
        self._input_quantization = quantization.get(self._input.name, (1.0, 0))
        metadata = self._session.get_modelmeta().custom_metadata_map
        self._fixed_hw = _input_hw(self._input.shape, self._channels_first, metadata)
        self._load(batch, quantization)
        self._encode = input_encoder(self.layout.input_range, {"dtype": dtype, "quantization": self._input_quantization})
        packed = _packed_labels(metadata, model)
        self.labels = labels_for_classes(packed if packed and not labels else find_labels(model, labels),
                                         self.layout.num_classes, model.name)
        if batch > 1 and self.max_batch == 1:
            log.info("%s: batch dimension is fixed; running one frame per call", model.name)

    def _load(self, batch: int, quantization: dict[str, tuple[float, int]]) -> None:
        """Run the model once on blank frames, at ``batch`` if its batch dimension is free, to
        learn its output shapes (free dimensions too) and its layout."""
        declared = self._input.shape[0]
        sizes = (batch, 1) if batch > 1 and not (isinstance(declared, int) and declared > 0) else (1,)
        names = [o.name for o in self._session.get_outputs()]
        for size in sizes:
            try:
                values = self._session.run(None, {self._input.name: self._blank(size, self._fixed_hw or (300, 300))})
            except Exception as error:  # onnxruntime's own exception types
                if size > 1:
                    continue
                raise UserError(f"{self.model}: cannot run this model ({first_line(error)})") from None
            if size > 1 and any(v.ndim == 0 or v.shape[0] != size for v in values):
                continue
            self.max_batch = size
            break
        outputs = [
            {"index": k, "name": name, "shape": [1, *v.shape[1:]] if v.ndim else [1], "quantization": quantization.get(name, (0.0, 0))}
            for k, (name, v) in enumerate(zip(names, values))
        ]
        try:
            self.layout: Layout = detect_layout(outputs, self._fixed_hw or (FREE_INPUT_SIZE, FREE_INPUT_SIZE))
        except UnknownLayout as error:
            raise UserError(f"{self.model}: {error}") from None
        if self._fixed_hw is None and not self.layout.any_size:
            self._fixed_hw = (FREE_INPUT_SIZE, FREE_INPUT_SIZE)
        self._outputs = outputs

    def _blank(self, batch: int, hw: tuple[int, int]) -> np.ndarray:
        shape = (batch, 3, *hw) if self._channels_first else (batch, *hw, 3)
        return np.zeros(shape, self._dtype)

    @property
    def input_size(self) -> tuple[int, int] | None:
        """(width, height) the model takes; None where it takes frames at their own size."""
        return None if self._fixed_hw is None else self._fixed_hw[::-1]

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        results: list[Detections] = []
        groups = [images[i : i + self.max_batch] for i in range(0, len(images), self.max_batch)]
        if self._fixed_hw is None:  # one tensor holds frames of one size
            groups = same_size_runs(images, self.max_batch)
        for chunk in groups:
            input_hw = self._fixed_hw or chunk[0].shape[:2]
            tensor = self._blank(len(chunk), input_hw)
            transforms = []
            for slot, image in enumerate(chunk):
                fitted, transform = fit(image, input_hw, self.layout.letterbox)
                encoded = self._encode(fitted)
                tensor[slot] = encoded.transpose(2, 0, 1) if self._channels_first else encoded
                transforms.append(transform)
            values = self._session.run(None, {self._input.name: tensor})
            out = {role: dequantize(values[k], self._outputs[k]) for role, k in self.layout.roles.items()}
            for slot, (image, transform) in enumerate(zip(chunk, transforms)):
                tensors = {role: t[slot] for role, t in out.items()}
                results.append(self.layout.detections(tensors, input_hw, transform, image.shape[1::-1], self.labels))
        return results


def _device(device: str) -> tuple[str, tuple[str, ...]]:
    """The device key (``auto`` resolved) and its execution providers, or one line naming the
    package that brings them."""
    available = set(ort.get_available_providers())
    if device == "auto":
        key = next(key for key in AUTO if DEVICES[key][0][0] in available)
        return key, DEVICES[key][0]
    if device not in DEVICES:
        raise UserError(f"unknown --device '{device}' (choose from auto, {', '.join(DEVICES)})")
    providers, install = DEVICES[device]
    if providers[0] not in available:
        raise UserError(
            f"--device {device} needs {providers[0]}, which this onnxruntime {ort.__version__} lacks "
            f"(it has {', '.join(sorted(available))}): {install}"
        )
    return device, providers


def _input_hw(shape: list, channels_first: bool, metadata: dict[str, str]) -> tuple[int, int] | None:
    """The input's (height, width): its own where fixed, else Ultralytics' ``imgsz`` metadata,
    else None (free: decided by the layout)."""
    dims = shape[2:4] if channels_first else shape[1:3]
    if all(isinstance(d, int) and d > 0 for d in dims):
        return int(dims[0]), int(dims[1])
    try:
        size = ast.literal_eval(metadata.get("imgsz", ""))
    except (ValueError, SyntaxError):
        return None
    if isinstance(size, int):
        size = [size, size]
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
        return int(size[0]), int(size[1])
    return None


def _packed_labels(metadata: dict[str, str], model: Path) -> dict[int, str] | None:
    """Labels in the model's metadata: Ultralytics writes ``names`` as a dict literal."""
    names = parse_metadata(metadata["names"]) if "names" in metadata else None
    return parse_names(names, f"{model} (metadata names)") if names is not None else None


def _quantization(graph: onnx.GraphProto) -> dict[str, tuple[float, int]]:
    """(scale, zero point) of quantised graph inputs and outputs, by tensor name: the
    ``DequantizeLinear`` an integer input feeds, the ``QuantizeLinear`` an integer output comes from
    (what tf2onnx makes of a full-integer TFLite file), through ops that only move values."""
    constants = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            constants[node.output[0]] = node.attribute[0].t
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input[:1]:
            consumers.setdefault(name, []).append(node)

    def parameters(node) -> tuple[float, int] | None:
        if len(node.input) < 2 or node.input[1] not in constants:
            return None
        scale = numpy_helper.to_array(constants[node.input[1]]).reshape(-1)
        zero = numpy_helper.to_array(constants[node.input[2]]).reshape(-1) if len(node.input) > 2 and node.input[2] in constants else [0]
        return (float(scale[0]), int(zero[0])) if scale.size == 1 else None

    def forward(name: str) -> tuple[float, int] | None:
        for node in consumers.get(name, []):
            if node.op_type == "DequantizeLinear":
                return parameters(node)
            if node.op_type in _MOVES_VALUES and (found := forward(node.output[0])):
                return found
        return None

    def backward(name: str) -> tuple[float, int] | None:
        node = producer.get(name)
        while node is not None and node.op_type in _MOVES_VALUES:
            node = producer.get(node.input[0])
        return parameters(node) if node is not None and node.op_type == "QuantizeLinear" else None

    integer = (onnx.TensorProto.UINT8, onnx.TensorProto.INT8)
    found = {v.name: forward(v.name) for v in graph.input if v.type.tensor_type.elem_type in integer}
    found |= {v.name: backward(v.name) for v in graph.output if v.type.tensor_type.elem_type in integer}
    return {name: q for name, q in found.items() if q}


def _shapes(values: list) -> str:
    return ", ".join(f"{v.name} {[d if isinstance(d, int) else str(d) for d in v.shape]}" for v in values)

