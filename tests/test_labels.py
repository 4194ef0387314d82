import json
import shutil
import zipfile
from pathlib import Path

import pytest

from livedroid.coco import COCO_80
from livedroid.errors import UserError
from livedroid.labels import (
    find_labels,
    format_label_map,
    labels_for_classes,
    load_labels,
    parse_label_lines,
    parse_label_map,
    read_packed_labels,
)
from tests.conftest import needs_module, run_cli, write_clip


@pytest.mark.parametrize(
    "text, expected",
    [
        ("item {\n  id: 1\n  name: 'BB-8'\n}\n\nitem {\n  id: 2\n  name: 'R2-D2'\n}", {1: "BB-8", 2: "R2-D2"}),
        ('item { name: "dog" id: 3 }', {3: "dog"}),
        ('item { id: 1 name: "/m/01g317" display_name: "person" }', {1: "person"}),
        ("# a comment\nitem {\n id: 5  # five\n name: 'cat'\n}", {5: "cat"}),
    ],
)
def test_parse_label_map(text, expected) -> None:
    assert parse_label_map(text) == expected


def test_label_map_names_round_trip_whatever_they_hold() -> None:
    """The one writer quotes so that the reader (and the Object Detection API's text format) gets
    back every name: apostrophes, quotes, backslashes and non-ASCII letters included."""
    labels = {1: "Dad's car", 2: 'the "big" one', 3: "back\\slash", 4: "Würfel", 5: "R2-D2"}
    text = format_label_map(labels)
    assert parse_label_map(text) == labels
    assert 'name: "Würfel"' in text and 'name: "the \\"big\\" one"' in text


def test_label_map_escapes_written_by_other_tools() -> None:
    text = 'item { id: 1 name: "W\\u00fcrfel" } item { id: 2 name: \'it\\\'s\' }'
    assert parse_label_map(text) == {1: "Würfel", 2: "it's"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("item { id: 1 name: 'a' }\nitem { id: 1 name: 'b' }", "id 1 is used twice"),
        ("item { id: 0 name: 'background' }", "must be 1 or more"),
        ("item { name: 'a' }", "no numeric id"),
        ("nothing here", "no 'item"),
    ],
)
def test_parse_label_map_errors(text, message) -> None:
    with pytest.raises(UserError, match=message):
        parse_label_map(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("???\nperson\nbicycle\n", {1: "person", 2: "bicycle"}),
        ("person\nbicycle\n", {1: "person", 2: "bicycle"}),
        ("???\nperson\n???\ncar\n", {1: "person", 3: "car"}),
        ("background\nR2-D2\n\n", {1: "R2-D2"}),
    ],
)
def test_parse_label_lines(text, expected) -> None:
    assert parse_label_lines(text) == expected


def test_packed_labels_are_read_from_the_zip_appended_to_a_model(tmp_path) -> None:
    model = tmp_path / "model.tflite"
    model.write_bytes(b"TFL3" + bytes(100))
    with zipfile.ZipFile(model, "a") as archive:
        archive.writestr("labelmap.txt", "???\nR2-D2\nBB-8\n")
    assert read_packed_labels(model) == {1: "R2-D2", 2: "BB-8"}
    assert find_labels(model) == {1: "R2-D2", 2: "BB-8"}


def test_labels_beside_the_model_and_explicit_file(tmp_path) -> None:
    model = tmp_path / "model.tflite"
    model.write_bytes(b"TFL3")
    assert find_labels(model) == {}
    (tmp_path / "label_map.pbtxt").write_text("item { id: 1 name: 'droid' }")
    assert find_labels(model) == {1: "droid"}
    other = tmp_path / "other.txt"
    other.write_text("a\nb\n")
    assert find_labels(model, other) == {1: "a", 2: "b"}


def test_missing_label_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(UserError, match="label file not found"):
        load_labels(tmp_path / "nope.pbtxt")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("path: ../datasets\nnames:\n  - red-square\n  - echo\n", {1: "red-square", 2: "echo"}),
        ("names:\n  0: person\n  1: bicycle\n", {1: "person", 2: "bicycle"}),
        ("names: {0: a, 2: c}\nnc: 3\n", {1: "a", 3: "c"}),
    ],
)
def test_ultralytics_data_yaml_names_a_0_based_list(tmp_path, text, expected) -> None:
    (tmp_path / "data.yaml").write_text(text)
    assert load_labels(tmp_path / "data.yaml") == expected


@pytest.mark.parametrize(
    "text, message",
    [("train: images/\n", "no 'names:'"), ("names: [a\n", "not valid YAML"), ("names: 3\n", "must be a list"),
     ("names: {x: a}\n", "keys must be class indices")],
)
def test_bad_data_yaml_is_a_clear_error(tmp_path, text, message) -> None:
    (tmp_path / "data.yml").write_text(text)
    with pytest.raises(UserError, match=message):
        load_labels(tmp_path / "data.yml")


@pytest.mark.parametrize(
    "entry, text",
    [
        ("metadata.json", json.dumps({"task": "detect", "names": {"0": "R2-D2", "1": "BB-8"}})),  # Ultralytics now
        ("temp_meta.txt", str({"stride": 32, "names": {0: "R2-D2", 1: "BB-8"}})),  # older: a Python literal
    ],
)
def test_ultralytics_metadata_packed_in_a_model_names_its_classes(tmp_path, entry, text) -> None:
    model = tmp_path / "model.tflite"
    model.write_bytes(b"TFL3" + bytes(100))
    with zipfile.ZipFile(model, "a") as archive:
        archive.writestr(entry, text)
    assert read_packed_labels(model) == {1: "R2-D2", 2: "BB-8"}


@pytest.mark.parametrize(
    "classes, first, last",
    [(80, (1, "person"), (80, "toothbrush")), (90, (1, "person"), (90, "toothbrush")), (91, (2, "person"), (91, "toothbrush"))],
)
def test_no_labels_with_coco_class_counts_names_them_as_coco(caplog, classes, first, last) -> None:
    labels = labels_for_classes({}, classes, f"coco{classes}.tflite")
    assert labels_for_classes({}, classes, f"coco{classes}.tflite") == labels  # warned once
    assert labels[first[0]] == first[1] and labels[last[0]] == last[1] and max(labels) == classes
    assert [r.message for r in caplog.records] == [
        f"coco{classes}.tflite: no labels found; naming its {classes} classes as COCO's (give --labels for others)"]
    if classes == 80:
        assert list(labels.values()) == list(COCO_80)


def test_labels_and_class_count_of_a_model() -> None:
    assert labels_for_classes({}, 3, "m") == {}
    assert labels_for_classes({1: "a", 2: "b"}, None, "m") == {1: "a", 2: "b"}  # the outputs do not say
    assert labels_for_classes({1: "a", 2: "b", 3: "c"}, 3, "m") == {1: "a", 2: "b", 3: "c"}
    with pytest.raises(UserError, match="m outputs 3 classes but its labels name 2 \\(ids up to 2\\)"):
        labels_for_classes({1: "a", 2: "b"}, 3, "m")


@pytest.fixture
def yolov8_model(layout_model, tmp_path) -> Path:
    """A copy of the 3-class YOLOv8-layout model, free to append metadata to."""
    return Path(shutil.copy(layout_model("yolov8"), tmp_path / "yolo.tflite"))


@pytest.mark.parametrize("names, packed", [(["red-square", "echo", "other"], False), (["red-square", "echo", "other"], True),
                                           (["red-square", "echo"], False)])
def test_cli_names_yolo_classes_from_a_data_yaml_or_the_model_and_refuses_a_wrong_count(
    yolov8_model, tmp_path, names, packed, livedroid_main
) -> None:
    args = []
    if packed:
        with zipfile.ZipFile(yolov8_model, "a") as archive:
            archive.writestr("metadata.json", json.dumps({"names": dict(enumerate(names))}))
    else:
        (tmp_path / "data.yaml").write_text("names:\n" + "".join(f"  - {n}\n" for n in names))
        args = ["--labels", "data.yaml"]
    clip = write_clip(tmp_path / "clip.mp4", frames=4, audio=None)
    result = livedroid_main("run", str(clip), "-m", str(yolov8_model), *args, "--jsonl", "out.jsonl", cwd=tmp_path)
    if len(names) != 3:
        assert result.returncode == 2 and not (tmp_path / "out.jsonl").exists()
        assert result.stderr.strip().splitlines() == [
            "livedroid: error: yolo.tflite outputs 3 classes but its labels name 2 (ids up to 2): "
            "give the labels the model was trained with (--labels)"]
        return
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [[d["label"] for d in r["detections"]] for r in records] == [["red-square", "echo"]] * 4


def test_cli_warns_once_that_an_80_class_model_without_labels_gets_coco_names(tmp_path) -> None:
    """In a fresh process: the warning is once a process (in this one an earlier test may have had it)."""
    needs_module("tensorflow", "building a TFLite model needs TensorFlow")
    from tests.yolo_detector import build_constant

    model = build_constant(tmp_path / "coco80.tflite", [1, 84, 525])  # YOLOv8 head, 80 classes, 160 x 160
    result = run_cli("run", str(write_clip(tmp_path / "clip.mp4", frames=2, audio=None)), "-m", str(model),
                     "--workers", "2", "--jsonl", "out.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("no labels found") == 1, result.stderr
