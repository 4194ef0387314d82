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
    pixels: its quantization maps 0..255 onto the model's [-1, 1]) and float outputs, calibrated
    on ``representative_images`` (RGB uint8, any size: resized to the model input here).
    """
    import tensorflow as tf
    from tqdm import tqdm

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, not {quantization!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
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
    tflite = converter.convert()
    if quantization == "int8":
        _check_pixel_input(tflite)
    if labels:
        tflite = pack_labels(tflite, labels)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(tflite)
    return out_path


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


def _check_pixel_input(tflite: bytes) -> None:
    """Fail unless the uint8 input maps raw pixels 0..255 onto [-1, 1], as runtimes assume.

    The converter takes the input range from the calibration images, so images without black
    and white pixels would give another mapping.
    """
    from ai_edge_litert.interpreter import Interpreter

    scale, zero_point = Interpreter(model_content=tflite).get_input_details()[0]["quantization"]
    low, high = (0 - zero_point) * scale, (255 - zero_point) * scale
    if abs(low + 1) > 2 * scale or abs(high - 1) > 2 * scale:
        raise ValueError(
            f"calibration images span [{low:.3f}, {high:.3f}] of the [-1, 1] input: "
            "include images with black and white pixels"
        )


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
