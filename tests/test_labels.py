import zipfile

import pytest

from livedroid.errors import UserError
from livedroid.labels import find_labels, load_labels, parse_label_lines, parse_label_map, read_packed_labels


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
