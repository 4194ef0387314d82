"""Turn a detector SavedModel into the ``.tflite`` file livedroid runs, with its labels packed in.

The SavedModel is the kind the Object Detection API's ``export_tflite_graph_tf2`` writes (and
:mod:`training.ssd_tflite_graph` writes for SSDs built outside the API): one float image input
[1, H, W, 3] scaled to [-1, 1], and a ``TFLite_Detection_PostProcess`` function the converter
turns into that op. Labels go in as TFLite metadata: a ``TFLITE_METADATA`` buffer naming a
``labelmap.txt`` associated file of the classes output, and the file itself in a zip archive
appended to the model, which is how TFLite metadata stores associated files (and how
``livedroid.labels.read_packed_labels`` finds them).
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from livedroid.pixels import unit_range

Quantization = Literal["float32", "float16", "int8"]
QUANTIZATIONS: tuple[Quantization, ...] = ("float32", "float16", "int8")

LABEL_FILE_NAME = "labelmap.txt"
POSTPROCESS_OP = "TFLite_Detection_PostProcess"
# The placeholder of line 0 in a TFLite label file (and of unused ids), as in TensorFlow's COCO file.
UNUSED_LABEL = "???"

_METADATA_BUFFER_NAME = "TFLITE_METADATA"
_TFLITE_FILE_ID = b"TFL3"
_METADATA_FILE_ID = b"M001"
# Metadata schema (tflite-support metadata_schema.fbs) facts used below.
_TENSOR_VALUE_LABELS = 3  # AssociatedFileType: the file names the values of a tensor, one a line
_MIN_PARSER_VERSION = "1.0.0"  # nothing newer than the schema's first version is used
# Names the metadata gives the post-process op's outputs, by output index (as TFLite's
# ObjectDetector metadata writer does).
_POSTPROCESS_OUTPUT_NAMES = ("location", "category", "score", "number of detections")


def convert_saved_model_to_tflite(
    saved_model_dir: str | Path,
    out_path: str | Path,
    quantization: Quantization = "float32",
    representative_images: Iterable[np.ndarray] | None = None,
    labels: dict[int, str] | None = None,
) -> Path:
    """Convert ``saved_model_dir`` to ``out_path`` and return it.

    ``float16`` halves the weights; ``int8`` is full integer with a uint8 image input (raw
    pixels: its quantization maps 0..255 onto the model's [-1, 1] whatever the images) and float
    outputs, calibrated on ``representative_images`` (RGB uint8, any size: resized to the model
    input here). Nothing is written when the file cannot run (:class:`ModelCannotRun`).
    """
    import tensorflow as tf
    from tqdm import tqdm

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, not {quantization!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    if quantization == "int8":
        height, width = saved_model_input_size(saved_model_dir)
        samples = [_to_model_input(image, width, height) for image in representative_images or ()]
        if not samples:
            raise ValueError("int8 conversion needs representative images to calibrate on")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [sample] for sample in tqdm(samples, desc="calibrating int8", unit="image")
        )
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,  # the post-process op and its float outputs
        ]
        converter.inference_input_type = tf.uint8
        tflite = _quantize_with_pixel_input(tf, converter)
        _check_pixel_input(tflite)
    else:
        if quantization == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        tflite = converter.convert()
    check_runs(tflite)
    if labels:
        tflite = pack_labels(tflite, labels)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(tflite)
    return out_path


class ModelCannotRun(RuntimeError):
    """The converted file fails in the interpreter livedroid runs it with (XNNPACK delegate)."""


def check_runs(tflite: bytes) -> None:
    """Raise :class:`ModelCannotRun` unless ``tflite`` loads and runs one frame in the interpreter
    ``livedroid run`` uses, with its default XNNPACK delegate. A file that converts can still be
    refused there: XNNPACK rejects int8 layers whose requantization scale (input scale × weight
    scale / output scale) is 256 or more, which weights blown up in training give, and
    ai_edge_litert 2.3 then aborts the process (double free) or raises. Hence its own process."""
    with tempfile.TemporaryDirectory(prefix="livedroid-check-") as folder:
        path = Path(folder) / "model.tflite"
        path.write_bytes(tflite)
        result = subprocess.run([sys.executable, "-c", _RUN_ONE_FRAME, str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("INFO:")]
        raise ModelCannotRun(lines[-1] if lines else f"the interpreter exited with status {result.returncode}")


# Load, allocate and invoke once on a blank frame, as livedroid's TFLite detector does.
_RUN_ONE_FRAME = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
interpreter = Interpreter(model_path=sys.argv[1], num_threads=2)
interpreter.allocate_tensors()
(image,) = interpreter.get_input_details()
interpreter.set_tensor(image["index"], np.zeros(image["shape"], image["dtype"]))
interpreter.invoke()
"""


def saved_model_input_size(saved_model_dir: str | Path) -> tuple[int, int]:
    """(height, width) of the single image input of the SavedModel's ``serving_default``."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    signature = saved_model.meta_graphs[0].signature_def["serving_default"]
    (image,) = signature.inputs.values()
    _, height, width, _ = (dim.size for dim in image.tensor_shape.dim)
    return height, width


def label_file_text(labels: dict[int, str]) -> str:
    """A TFLite label file: line 0 is ``???``, line k names label-map id k (``???`` if unused)."""
    lines = [labels.get(label_id, UNUSED_LABEL) for label_id in range(max(labels, default=0) + 1)]
    lines[0] = UNUSED_LABEL
    return "\n".join(lines) + "\n"


def pack_labels(tflite_bytes: bytes, labels: dict[int, str]) -> bytes:
    """``tflite_bytes`` with ``labels`` ({label-map id: name}) packed in as TFLite metadata.

    The model must end in ``TFLite_Detection_PostProcess``: the label file is attached to its
    classes output. Labels packed earlier are replaced.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite_bytes), 0)
    metadata = _model_metadata(model)
    entries = [m for m in model.metadata or [] if _text(m.name) != _METADATA_BUFFER_NAME]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = _METADATA_BUFFER_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*entries, entry]
    builder = flatbuffers.Builder(len(tflite_bytes) + len(metadata) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=_TFLITE_FILE_ID)
    return bytes(builder.Output()) + _zip({LABEL_FILE_NAME: label_file_text(labels)})


def _to_model_input(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """An RGB uint8 image as the float model input: resized, scaled to [-1, 1], batch of one."""
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return unit_range(resized)[np.newaxis]


def _quantize_with_pixel_input(tf, converter) -> bytes:
    """Calibrate, fix the image input's range at [-1, 1], then quantize: a uint8 input that maps
    raw pixels 0..255 onto the model's [-1, 1] whatever the calibration images hold.

    The converter takes every tensor's range from the calibration images, the input's too, so
    images without black or white pixels (microscopy, fog, night infrared) would give an input
    that clips darker and brighter pixels. A fake-quant op at the input does not help: the
    converter requantizes its output to the calibrated range. So the calibrated model (float, with
    each tensor's range recorded) gets the input range replaced before the quantizer reads it;
    ``_experimental_calibrate_only`` and ``mlir_quantize`` are the two halves of what
    ``converter.convert()`` does (TensorFlow's quantization debugger uses them alike).
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    from tensorflow.lite.python.convert import mlir_quantize

    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    model = schema.ModelT.InitFromPackedBuf(bytearray(calibrated), 0)
    subgraph = model.subgraphs[0]
    for tensor in subgraph.inputs:
        subgraph.tensors[tensor].quantization.min = [-1.0]
        subgraph.tensors[tensor].quantization.max = [1.0]
    builder = flatbuffers.Builder(len(calibrated) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=_TFLITE_FILE_ID)
    return mlir_quantize(bytes(builder.Output()), input_data_type=tf.uint8, output_data_type=tf.float32)


def _check_pixel_input(tflite: bytes) -> None:
    """Fail unless the uint8 input maps raw pixels 0..255 onto [-1, 1], as runtimes assume (an
    internal error: :func:`_quantize_with_pixel_input` fixes that range whatever the images)."""
    from ai_edge_litert.interpreter import Interpreter

    scale, zero_point = Interpreter(model_content=tflite).get_input_details()[0]["quantization"]
    low, high = (0 - zero_point) * scale, (255 - zero_point) * scale
    if abs(low + 1) > 2 * scale or abs(high - 1) > 2 * scale:
        raise AssertionError(f"the int8 input maps pixels 0..255 onto [{low:.3f}, {high:.3f}], not [-1, 1]")


def _model_metadata(model: object) -> bytes:
    """The ``ModelMetadata`` flatbuffer (tflite-support metadata schema) for a detector."""
    import flatbuffers

    postprocess = _postprocess_outputs(model)
    subgraph = model.subgraphs[0]
    builder = flatbuffers.Builder(1024)
    label_file = _table(
        builder,
        strings={0: LABEL_FILE_NAME, 1: "Class names: line k names label-map id k (class k - 1)."},
        bytes_={2: _TENSOR_VALUE_LABELS},
    )
    inputs = [_table(builder, strings={0: "image"}) for _ in subgraph.inputs]
    outputs = []
    for tensor in subgraph.outputs:
        role = postprocess.index(tensor) if tensor in postprocess else None
        name = _POSTPROCESS_OUTPUT_NAMES[role] if role is not None else _text(subgraph.tensors[tensor].name)
        files = {6: _vector(builder, [label_file])} if role == 1 else {}
        outputs.append(_table(builder, strings={0: name}, offsets=files))
    subgraph_metadata = _table(
        builder, offsets={2: _vector(builder, inputs), 3: _vector(builder, outputs)}
    )
    root = _table(
        builder,
        strings={
            0: "livedroid detector",
            1: "Object detection in the Object Detection API TFLite layout; labels in labelmap.txt.",
            7: _MIN_PARSER_VERSION,
        },
        offsets={3: _vector(builder, [subgraph_metadata])},
    )
    builder.Finish(root, file_identifier=_METADATA_FILE_ID)
    return bytes(builder.Output())


def _postprocess_outputs(model: object) -> list[int]:
    """Tensor indices of the post-process op's outputs: boxes, classes, scores, count."""
    operators = model.subgraphs[0].operators if model.subgraphs else None
    for operator in operators or []:
        code = model.operatorCodes[operator.opcodeIndex]
        if _text(code.customCode) == POSTPROCESS_OP:
            return list(operator.outputs)
    raise ValueError(f"labels can only be packed into a model ending in {POSTPROCESS_OP}")


def _table(
    builder: object,
    strings: dict[int, str] | None = None,
    offsets: dict[int, int] | None = None,
    bytes_: dict[int, int] | None = None,
) -> int:
    """One flatbuffer table from {field slot: value}; nested objects must already be built."""
    fields = {slot: builder.CreateString(text) for slot, text in (strings or {}).items()}
    fields.update(offsets or {})
    builder.StartObject(1 + max([*fields, *(bytes_ or {})]))
    for slot, offset in fields.items():
        builder.PrependUOffsetTRelativeSlot(slot, offset, 0)
    for slot, value in (bytes_ or {}).items():
        builder.PrependInt8Slot(slot, value, 0)
    return builder.EndObject()


def _vector(builder: object, offsets: list[int]) -> int:
    """A flatbuffer vector of already-built tables."""
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _zip(files: dict[str, str]) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as writer:
        for name, text in files.items():
            writer.writestr(name, text)
    return archive.getvalue()


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
