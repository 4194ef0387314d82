"""Labels packed into a TFLite file: real TFLite metadata, readable by livedroid, model unchanged."""

from __future__ import annotations


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
