"""Labels packed into a TFLite file: real TFLite metadata, readable by livedroid, model unchanged; the
int8 input maps raw pixels onto [-1, 1] whatever the calibration images; a file XNNPACK refuses is not written."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from livedroid.labels import parse_label_lines, read_packed_labels
from livedroid.training.tflite_export import label_file_text, pack_labels
from tests.conftest import shared_path

# TensorFlow's COCO SSD v1 in the Object Detection API layout, without metadata of its own.
REFERENCE = "models/coco-ssd-mobilenet-v1-quant/detect.tflite"
LABELS = {1: "BB-8", 2: "R2-D2", 4: "C-3PO"}


@pytest.fixture(scope="module")
def reference() -> bytes:
    return shared_path(REFERENCE).read_bytes()


def field(table: flatbuffers.table.Table, slot: int) -> int:
    """Absolute position of a table's field ``slot`` (0 when absent)."""
    offset = table.Offset(4 + 2 * slot)
    return offset and table.Pos + offset


def subtable(table, slot: int) -> flatbuffers.table.Table:
    return flatbuffers.table.Table(table.Bytes, table.Indirect(field(table, slot)))


def vector_tables(table, slot: int) -> list[flatbuffers.table.Table]:
    position = field(table, slot)
    if not position:
        return []
    start = table.Vector(position - table.Pos)
    return [
        flatbuffers.table.Table(table.Bytes, table.Indirect(start + 4 * i))
        for i in range(table.VectorLen(position - table.Pos))
    ]


def string(table, slot: int) -> str:
    return table.String(field(table, slot)).decode()


def metadata_entries(tflite: bytes) -> dict[str, bytes]:
    model = schema.Model.GetRootAs(bytearray(tflite), 0)
    entries = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        entries[entry.Name().decode()] = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return entries


def test_label_file_has_a_placeholder_line_zero_and_for_unused_ids():
    assert label_file_text(LABELS) == "???\nBB-8\nR2-D2\n???\nC-3PO\n"
    assert parse_label_lines(label_file_text(LABELS)) == LABELS


def test_packed_labels_are_read_back_by_the_runtime(reference, tmp_path):
    path = tmp_path / "detect.tflite"
    path.write_bytes(pack_labels(reference, LABELS))
    assert read_packed_labels(path) == LABELS


def test_the_metadata_attaches_the_label_file_to_the_classes_output(reference):
    metadata = metadata_entries(pack_labels(reference, LABELS))["TFLITE_METADATA"]
    assert metadata[4:8] == b"M001"  # the metadata schema's file identifier
    root = flatbuffers.table.Table(bytearray(metadata), flatbuffers.encode.Get(flatbuffers.packer.uoffset, metadata, 0))
    (subgraph,) = vector_tables(root, 3)  # ModelMetadata.subgraph_metadata
    outputs = vector_tables(subgraph, 3)  # SubGraphMetadata.output_tensor_metadata
    assert [string(t, 0) for t in outputs] == ["location", "category", "score", "number of detections"]
    files = [vector_tables(t, 6) for t in outputs]  # TensorMetadata.associated_files
    assert [len(f) for f in files] == [0, 1, 0, 0]
    label_file = files[1][0]
    assert string(label_file, 0) == "labelmap.txt"
    assert label_file.Get(flatbuffers.number_types.Int8Flags, field(label_file, 2)) == 3  # TENSOR_VALUE_LABELS


def test_packing_again_replaces_the_labels(reference, tmp_path):
    path = tmp_path / "detect.tflite"
    path.write_bytes(pack_labels(pack_labels(reference, {1: "old"}), LABELS))
    assert read_packed_labels(path) == LABELS
    assert list(metadata_entries(path.read_bytes())).count("TFLITE_METADATA") == 1


def test_the_packed_model_computes_exactly_what_the_original_does(reference):
    image = np.random.default_rng(0).integers(0, 256, (1, 300, 300, 3), dtype=np.uint8)
    results = []
    for tflite in (reference, pack_labels(reference, LABELS)):
        interpreter = Interpreter(model_content=tflite, num_threads=1)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
        interpreter.invoke()
        results.append([interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()])
    for original, packed in zip(*results):
        np.testing.assert_array_equal(original, packed)


def test_a_model_without_the_post_process_op_is_refused():
    builder = flatbuffers.Builder(64)
    schema.ModelStart(builder)
    schema.ModelAddVersion(builder, 3)
    builder.Finish(schema.ModelEnd(builder), file_identifier=b"TFL3")
    with pytest.raises(ValueError, match="TFLite_Detection_PostProcess"):
        pack_labels(bytes(builder.Output()), LABELS)


def tiny_int8(tmp_path: Path, predict, images) -> Path:
    """The tiny red-square detector with ``predict`` converted to int8, calibrated on ``images``."""
    from livedroid.training.ssd_tflite_graph import PostprocessSettings, save_ssd_tflite_graph
    from livedroid.training.tflite_export import convert_saved_model_to_tflite
    from tests import tiny_detector

    settings = PostprocessSettings(num_classes=1, score_threshold=0.5, iou_threshold=0.3)
    size = (tiny_detector.INPUT_SIZE, tiny_detector.INPUT_SIZE)
    graph = save_ssd_tflite_graph(tmp_path / "graph", predict, tiny_detector.anchors(), size, settings)
    return convert_saved_model_to_tflite(graph, tmp_path / "model.tflite", "int8", images, tiny_detector.LABELS)


@pytest.mark.slow
def test_int8_input_maps_raw_pixels_onto_minus_one_to_one_whatever_the_calibration_images(tmp_path):
    pytest.importorskip("tensorflow", reason="the tiny detector is built with TensorFlow (train extra)")
    from tests import tiny_detector

    def dim(image: np.ndarray) -> np.ndarray:  # no pixel darker than 40 or brighter than 215
        return (40 + image * (175 / 255)).astype(np.uint8)

    model = tiny_int8(tmp_path, tiny_detector.predict, [dim(image) for image in tiny_detector.calibration_images()])
    interpreter = Interpreter(model_path=str(model), num_threads=1)
    scale, zero_point = interpreter.get_input_details()[0]["quantization"]
    assert scale == pytest.approx(2 / 255) and zero_point in (127, 128)  # pixels 0..255 onto [-1, 1]
    first = interpreter._get_ops_details()[1]  # after the uint8 -> int8 shift: the model's own first op
    assert first["op_name"] == "CONV_2D"  # fed the pinned input, not requantized to the images' range

    runner = interpreter.get_signature_runner("serving_default")
    out = runner(input=dim(tiny_detector.red_square_image((64, 64), (18, 18, 42, 42)))[np.newaxis])  # on an anchor
    assert int(out["num_detections"][0]) >= 1 and out["detection_scores"][0, 0] > 0.5


@pytest.mark.slow
def test_an_int8_file_xnnpack_refuses_is_not_written(tmp_path):
    """Weights blown up 1e5 times under a ReLU6 give a requantization scale over 256, which
    XNNPACK refuses (the drone set's 'failed to create XNNPACK runtime')."""
    tf = pytest.importorskip("tensorflow", reason="the tiny detector is built with TensorFlow (train extra)")
    from livedroid.training.tflite_export import ModelCannotRun
    from tests import tiny_detector

    def blown_up(image):
        kernel = tf.constant([1.0e5, -0.5e5, -0.5e5], shape=[1, 1, 3, 1])
        redness = tf.nn.relu6(tf.nn.conv2d(image, kernel, strides=1, padding="VALID"))
        share = tf.nn.avg_pool2d(redness, tiny_detector.ANCHOR_PIXELS, strides=4, padding="SAME") / 6.0
        logits = tf.reshape(10.0 * (share - 0.6), [-1, 256, 1])
        return tf.zeros([tf.shape(logits)[0], 256, 4]), tf.concat([tf.sigmoid(-logits), tf.sigmoid(logits)], axis=2)

    with pytest.raises(ModelCannotRun):
        tiny_int8(tmp_path, blown_up, tiny_detector.calibration_images())
    assert not (tmp_path / "model.tflite").exists()
