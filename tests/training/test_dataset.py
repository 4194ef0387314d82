"""Dataset preparation: readers, label names, validation, split, TFRecord round trip."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from livedroid.errors import UserError
from livedroid.labels import load_labels
from tests.training.conftest import make_voc_dataset, voc_xml
from livedroid.annotations import voc
from livedroid.training.dataset import tfrecords
from livedroid.annotations import AnnotatedImage, Box, Problem
from livedroid.training.dataset.class_names import apply_label_map, parse_aliases
from livedroid.training.dataset.prepare import PreparedDataset, check_split, prepare_dataset
from livedroid.training.dataset.split import grouped_split
from livedroid.training.dataset.validate import check_image, validate_images


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _truncate_image(root: Path) -> None:
    path = root / "images" / "red_0.jpg"
    path.write_bytes(path.read_bytes()[:300])


def _resize_image(root: Path) -> None:
    path = root / "images" / "red_0.jpg"
    Image.open(path).resize((50, 40)).save(path)


def _box_outside(root: Path) -> None:
    _write(root / "annotations" / "red_0.xml", voc_xml("red_0.jpg", 96, 72, [("red", (100, 80, 120, 90)), ("red", (1, 1, 9, 9))]))


def _box_overhanging(root: Path) -> None:
    _write(root / "annotations" / "red_0.xml", voc_xml("red_0.jpg", 96, 72, [("red", (-5, 10, 120, 30))]))


def _zero_area(root: Path) -> None:
    _write(root / "annotations" / "red_0.xml", voc_xml("red_0.jpg", 96, 72, [("red", (10, 10, 10, 30)), ("red", (1, 1, 9, 9))]))


def _no_usable_boxes(root: Path) -> None:
    _write(root / "annotations" / "red_0.xml", voc_xml("red_0.jpg", 96, 72, [("red", (10, 10, 10, 30))]))


def _nan_coordinate(root: Path) -> None:
    _write(root / "annotations" / "red_0.xml", voc_xml("red_0.jpg", 96, 72, [("red", (1, 1, "nan", 9))]))


def _infinite_coordinate(root: Path) -> None:
    _write(root / "annotations" / "red_0.xml", voc_xml("red_0.jpg", 96, 72, [("red", (1, "-inf", 9, 9))]))


def _duplicate(root: Path) -> None:
    (root / "images" / "copy.jpg").write_bytes((root / "images" / "red_0.jpg").read_bytes())
    _write(root / "annotations" / "copy.xml", voc_xml("copy.jpg", 96, 72, [("red", (1, 1, 9, 9))]))


def _missing_image(root: Path) -> None:
    (root / "images" / "red_0.jpg").unlink()


def _broken_xml(root: Path) -> None:
    _write(root / "annotations" / "red_0.xml", "<annotation><filename>red_0.jpg</filename>")


def _bmp_image(root: Path) -> None:
    Image.open(root / "images" / "red_0.jpg").save(root / "images" / "red_0.bmp")
    (root / "images" / "red_0.jpg").unlink()
    xml = (root / "annotations" / "red_0.xml").read_text().replace("red_0.jpg", "red_0.bmp")
    _write(root / "annotations" / "red_0.xml", xml)


# (break the dataset, expected message fragment, expected action, images written of 8)
VALIDATION_CASES = [
    (_truncate_image, "unreadable or truncated", "dropped image", 7),
    (_resize_image, "annotation says the image is 96x72 but", "dropped image", 7),
    (_box_outside, "lies outside the 96x72 image", "dropped box", 8),
    (_box_overhanging, "extends beyond the 96x72 image", "clipped box", 8),
    (_zero_area, "has zero area", "dropped box", 8),
    (_no_usable_boxes, "red_0.xml: no usable boxes left", "dropped image", 7),  # not a background image
    (_nan_coordinate, "red_0.xml: cannot read the annotation: <xmax> is 'nan', not a finite number", "dropped image", 7),
    (_infinite_coordinate, "<ymin> is '-inf', not a finite number", "dropped image", 7),
    (_duplicate, "red_0.xml: same image as annotations/copy.xml", "dropped image", 8),
    (_missing_image, "image file not found", "dropped image", 7),
    (_broken_xml, "cannot read the annotation", "dropped image", 7),
    (_bmp_image, "BMP image re-encoded as PNG", "note", 8),
]


@pytest.mark.parametrize("breakage, message, action, written", VALIDATION_CASES, ids=lambda c: getattr(c, "__name__", None))
def test_broken_inputs_are_reported_where_they_are(tmp_path, capsys, breakage, message, action, written):
    root = make_voc_dataset(tmp_path / "data")
    breakage(root)
    prepared = prepare_dataset(root, tmp_path / "out", val_fraction=0.25)
    problems = (tmp_path / "out" / "problems.txt").read_text()
    assert message in problems and f"({action})" in problems
    assert sum(prepared.images.values()) == written
    assert message in capsys.readouterr().out


def test_unknown_class_names_name_the_files_and_suggest_the_fix(tmp_path):
    root = make_voc_dataset(tmp_path / "data")
    _write(root / "label_map.pbtxt", "item { id: 1 name: 'Red' } item { id: 2 name: 'Blue' }")
    with pytest.raises(UserError) as caught:
        prepare_dataset(root, tmp_path / "out")
    message = str(caught.value)
    assert "'red': 4 box(es) in annotations/red_0.xml" in message
    assert "did you mean 'Red'?" in message
    assert "--label-alias blue=Blue --label-alias red=Red" in message


@pytest.mark.parametrize(
    "aliases, match, expected",
    [
        ({"bb8": "BB-8", "r2d2": "R2-D2"}, False, ["BB-8", "R2-D2", "BB-8"]),
        ({}, True, ["BB-8", "R2-D2", "BB-8"]),
        ({"bb8": "R2-D2"}, True, ["R2-D2", "R2-D2", "BB-8"]),  # an explicit alias wins
    ],
)
def test_aliases_and_loose_matching_rename_boxes(aliases, match, expected):
    images = [AnnotatedImage("a.xml", "a.jpg", [Box("bb8", 0, 0, 1, 1), Box("r2d2", 0, 0, 1, 1), Box("BB-8", 0, 0, 1, 1)])]
    apply_label_map(images, {1: "BB-8", 2: "R2-D2"}, aliases, match, [])
    assert [box.label for box in images[0].boxes] == expected


@pytest.mark.parametrize("spec", ["r2d2", "=R2-D2", "r2d2="])
def test_malformed_alias_is_a_user_error(spec):
    with pytest.raises(UserError, match="expected NAME=LABEL"):
        parse_aliases([spec])


def test_alias_to_a_name_missing_from_the_label_map_is_a_user_error():
    with pytest.raises(UserError, match="'R2D2' is not in the label map"):
        apply_label_map([], {1: "R2-D2"}, {"r2": "R2D2"}, False, [])


def test_label_map_is_derived_from_names_when_none_is_given(tmp_path):
    prepared = prepare_dataset(make_voc_dataset(tmp_path / "data"), tmp_path / "out")
    assert load_labels(tmp_path / "out" / "label_map.pbtxt") == {1: "blue", 2: "red"} == prepared.label_map


def test_split_is_deterministic_stratified_and_independent_of_file_order(tmp_path):
    images = [check_image(a, []) for a in _annotated(make_voc_dataset(tmp_path / "d", count=20))]
    train, val, _ = grouped_split(images, 0.3, seed=3)
    train2, val2, _ = grouped_split(list(reversed(images)), 0.3, seed=3)
    assert {i.sha256 for i in val} == {i.sha256 for i in val2}
    assert sorted(b.label for i in val for b in i.boxes) == ["blue"] * 3 + ["red"] * 3  # 10 × 0.3 each
    _, val_other_seed, _ = grouped_split(images, 0.3, seed=4)
    assert {i.sha256 for i in val} != {i.sha256 for i in val_other_seed}
    assert len(train) + len(val) == 20


def test_every_class_reaches_validation_even_when_rare(tmp_path):
    images = [check_image(a, []) for a in _annotated(make_voc_dataset(tmp_path / "d", count=12))]
    images[0].boxes[0].label = images[2].boxes[0].label = "rare"
    _, val, _ = grouped_split(images, 0.1, seed=0)
    assert "rare" in {b.label for i in val for b in i.boxes}


def test_records_round_trip_and_are_accepted_as_input(tmp_path):
    root = make_voc_dataset(tmp_path / "data")
    first = prepare_dataset(root, tmp_path / "first", val_fraction=0.25)
    records = sorted((tmp_path / "first").glob("*.record"))
    read_back = tfrecords.read_records(records)
    assert len(read_back) == 8 and read_back[0].image_bytes[:2] == b"\xff\xd8"
    originals = {a.filename: a for a in _annotated(root)}
    for image in read_back:
        expected = originals[image.filename].boxes[0]
        got = image.boxes[0]
        assert got.label == expected.label
        assert (got.xmin, got.ymin, got.xmax, got.ymax) == pytest.approx((expected.xmin, expected.ymin, expected.xmax, expected.ymax), abs=1e-3)
    again = prepare_dataset(tmp_path / "first", tmp_path / "second", val_fraction=0.25)
    assert again.counts == first.counts


def test_coco_json_is_read(tmp_path):
    root = make_voc_dataset(tmp_path / "data")
    coco = {"images": [], "annotations": [], "categories": [{"id": 7, "name": "red"}, {"id": 9, "name": "blue"}]}
    for number, annotated in enumerate(_annotated(root), start=1):
        coco["images"].append({"id": number, "file_name": annotated.filename, "width": 96, "height": 72})
        box = annotated.boxes[0]
        coco["annotations"].append(
            {"id": number, "image_id": number, "category_id": 7 if box.label == "red" else 9,
             "bbox": [box.xmin, box.ymin, box.xmax - box.xmin, box.ymax - box.ymin], "iscrowd": 0}
        )
    coco["annotations"].append({"id": 99, "image_id": 1, "category_id": 5, "bbox": [0, 0, 1, 1]})
    for xml in (root / "annotations").glob("*.xml"):
        xml.unlink()
    _write(root / "instances.json", json.dumps(coco))
    prepared = prepare_dataset(root, tmp_path / "out", val_fraction=0.25)
    assert prepared.counts["train"]["red"] + prepared.counts["val"]["red"] == 4
    assert "instances.json annotation 99: unknown category_id 5 (dropped box)" in (tmp_path / "out" / "problems.txt").read_text()


def test_empty_folder_says_what_was_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no annotations found .* Pascal VOC .xml files"):
        prepare_dataset(tmp_path / "empty", tmp_path / "out")


def test_prepared_dataset_loads_back(tmp_path):
    prepare_dataset(make_voc_dataset(tmp_path / "data"), tmp_path / "out")
    loaded = PreparedDataset.load(tmp_path / "out")
    assert loaded.train_pattern.endswith("train-?????-of-00001.record")
    with pytest.raises(UserError, match="run 'livedroid train prepare' first"):
        PreparedDataset.load(tmp_path)


def _annotated(root: Path) -> list[AnnotatedImage]:
    from livedroid.annotations.voc import read_voc_folder

    problems: list[Problem] = []
    images = read_voc_folder(root, problems)
    assert not problems
    return images


def test_validate_keeps_input_order(tmp_path):
    annotated = _annotated(make_voc_dataset(tmp_path / "d"))
    assert [c.source for c in validate_images(annotated, [])] == [a.source for a in annotated]


@pytest.mark.parametrize(
    "xml_folder, image_folder",
    [
        ("annotations", "images"),  # labelImg with separate folders (star-wars, raccoon)
        ("photos", "photos"),  # labelImg's default: the XML beside its image
        ("annotations/xmls", "images"),  # Oxford-IIIT Pets
        ("Annotations", "JPEGImages"),  # Pascal VOC
    ],
)
def test_voc_layouts_find_their_images(tmp_path, xml_folder, image_folder):
    from livedroid.annotations.voc import read_voc_folder

    made = make_voc_dataset(tmp_path / "made", count=2)
    root = tmp_path / "data"
    (root / xml_folder).mkdir(parents=True)
    (root / image_folder).mkdir(parents=True, exist_ok=True)
    for xml in (made / "annotations").glob("*.xml"):
        xml.rename(root / xml_folder / xml.name)
    for image in (made / "images").glob("*.jpg"):
        image.rename(root / image_folder / image.name)
    images = read_voc_folder(root, [])
    assert len(images) == 2 and all(image.image_path.parent == root / image_folder for image in images)


def _one_blue_image(root: Path) -> None:
    for path in sorted((root / "annotations").glob("blue_*.xml"))[1:]:
        path.unlink()


def _label_map_with_an_unused_class(root: Path) -> None:
    _write(root / "label_map.pbtxt", "item { id: 1 name: 'red' }\nitem { id: 2 name: 'blue' }\nitem { id: 3 name: 'green' }\n")


@pytest.mark.parametrize(
    "breakage, message",
    [
        (_one_blue_image, r"too few images to train and validate: blue \(1\)"),
        (_label_map_with_an_unused_class, r"the label map names green but no image has a box of it"),
    ],
)
def test_datasets_that_cannot_be_trained_and_measured_are_one_clear_error(tmp_path, breakage, message):
    root = make_voc_dataset(tmp_path / "data")
    breakage(root)
    with pytest.raises(UserError, match=message):
        prepare_dataset(root, tmp_path / "out", val_fraction=0.25)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()  # nothing half-written


def test_a_class_missing_from_validation_is_one_clear_error():
    """Its images all went to training with a rarer class they also show."""
    image = lambda *labels: AnnotatedImage("x.xml", "x.jpg", [Box(label, 0, 0, 9, 9) for label in labels])  # noqa: E731
    train, val = [image("green", "blue"), image("green", "blue")], [image("green")]
    with pytest.raises(UserError, match="class blue has no image on one side of the train/validation split"):
        check_split({1: "green", 2: "blue"}, train, val, Path("data"))


def test_a_rerun_replaces_the_dataset_whole(tmp_path):
    root = make_voc_dataset(tmp_path / "data")
    prepare_dataset(root, tmp_path / "out", val_fraction=0.25)
    (tmp_path / "out" / "stale.record").write_bytes(b"")
    prepare_dataset(root, tmp_path / "out", val_fraction=0.25)
    assert not (tmp_path / "out" / "stale.record").exists() and not (tmp_path / "out.partial").exists()


def test_tutorial_labels_csv_is_read_with_images_beside_its_folder(tmp_path):
    root = make_voc_dataset(tmp_path / "data", count=4)
    rows = ["filename,width,height,class,xmin,ymin,xmax,ymax"]
    for annotated in voc.read_voc_folder(root, []):
        rows += [f"{annotated.filename},96,72,{b.label},{b.xmin},{b.ymin},{b.xmax},{b.ymax}" for b in annotated.boxes]
    (root / "csv").mkdir()
    (root / "csv" / "train_labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    prepared = prepare_dataset(root / "csv" / "train_labels.csv", tmp_path / "out", val_fraction=0.5)
    assert prepared.label_map == {1: "blue", 2: "red"} and sum(prepared.images.values()) == 4


def test_images_annotated_with_no_object_are_background_training_data(tmp_path, capsys):
    root = make_voc_dataset(tmp_path / "data", count=10)
    for name in ("red_0", "blue_1"):  # labelImg saves an image without boxes as an XML without <object>
        _write(root / "annotations" / f"{name}.xml", voc_xml(f"{name}.jpg", 96, 72, []))
    (root / "annotations" / "red_2.xml").unlink()  # an image nobody annotated
    prepared = prepare_dataset(root, tmp_path / "out", val_fraction=0.25)
    assert sum(prepared.images.values()) == 9 and sum(prepared.background.values()) == 2
    summary = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert summary["train"]["background"] + summary["val"]["background"] == 2
    output = capsys.readouterr().out
    assert f"{root}: 1 unlabelled images left out (1 that no annotation names)" in output
    assert "no objects annotated" not in output and (tmp_path / "out" / "problems.txt").read_text() == ""
    assert "background" in output.split("images  ")[-1]
    read_back = tfrecords.read_records(sorted((tmp_path / "out").glob("*.record")))
    assert sorted(image.filename for image in read_back if not image.boxes) == ["blue_1.jpg", "red_0.jpg"]


def _coco_of(root: Path) -> dict:
    """The VOC dataset at ``root`` as a COCO document (its XML removed)."""
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "red"}, {"id": 2, "name": "blue"}]}
    for number, annotated in enumerate(_annotated(root), start=1):
        coco["images"].append({"id": number, "file_name": annotated.filename, "width": 96, "height": 72})
        for box in annotated.boxes:
            coco["annotations"].append({"id": number, "image_id": number, "category_id": 1 if box.label == "red" else 2,
                                        "bbox": [box.xmin, box.ymin, box.xmax - box.xmin, box.ymax - box.ymin]})
    for xml in (root / "annotations").glob("*.xml"):
        xml.unlink()
    return coco


def test_coco_bad_numbers_are_located_and_an_image_without_annotations_is_background(tmp_path):
    root = make_voc_dataset(tmp_path / "data", count=20)
    coco = _coco_of(root)
    coco["annotations"][0]["bbox"] = [10, 20, None, 50]
    coco["annotations"][1]["bbox"] = [float("nan")] * 4
    coco["annotations"][2]["bbox"] = [1, "2", 3, 4]
    coco["annotations"][3]["bbox"] = [1, 2, float("inf"), 4]
    del coco["annotations"][4]  # listed, not annotated: background
    _write(root / "instances.json", json.dumps(coco))  # NaN and Infinity as Python's json writes them
    prepared = prepare_dataset(root, tmp_path / "out", val_fraction=0.25)
    problems = (tmp_path / "out" / "problems.txt").read_text()
    for number, bbox in ((1, "[10, 20, null, 50]"), (2, "[NaN, NaN, NaN, NaN]"), (3, '[1, "2", 3, 4]'), (4, "[1, 2, Infinity, 4]")):
        assert f"instances.json annotation {number}: bbox is {bbox}, expected [x, y, width, height] of finite numbers (dropped box)" in problems
        assert f"instances.json image id {number} (" in problems and "no usable boxes left (dropped image)" in problems
    assert sum(prepared.images.values()) == 16 and sum(prepared.background.values()) == 1


def test_csv_bad_numbers_are_located_and_a_row_without_a_box_is_background(tmp_path):
    root = make_voc_dataset(tmp_path / "data", count=8)
    rows = ["filename,width,height,class,xmin,ymin,xmax,ymax"]
    for annotated in voc.read_voc_folder(root, []):
        rows += [f"{annotated.filename},96,72,{b.label},{b.xmin},{b.ymin},{b.xmax},{b.ymax}" for b in annotated.boxes]
    rows[1] = rows[1].rsplit(",", 1)[0] + ",nan"
    rows[2] = rows[2].split(",")[0] + ",96,72,,,,,"
    _write(root / "labels.csv", "\n".join(rows) + "\n")
    prepared = prepare_dataset(root / "labels.csv", tmp_path / "out", val_fraction=0.25)
    problems = (tmp_path / "out" / "problems.txt").read_text()
    assert "labels.csv line 2: box blue," in problems and ",nan is not a class and four finite numbers (dropped box)" in problems
    assert "labels.csv line 2: no usable boxes left (dropped image)" in problems
    assert sum(prepared.images.values()) == 7 and sum(prepared.background.values()) == 1


def test_a_box_that_is_not_finite_never_reaches_the_records(tmp_path):
    root = make_voc_dataset(tmp_path / "data", count=1)
    image = _annotated(root)[0]
    image.boxes = [Box("red", 1, 1, float("nan"), 9), Box("red", float("-inf"), 1, 9, 9)]  # as a record may hold them
    problems: list[Problem] = []
    assert check_image(image, problems) is None
    assert [p.action for p in problems] == ["dropped box", "dropped box", "dropped image"]
    assert "has a coordinate that is not a finite number" in problems[0].what


def test_names_alike_become_one_class_of_a_derived_label_map_under_match_label_names(capsys):
    def images():
        return [AnnotatedImage("a.xml", "a.jpg", [Box(n, 0, 0, 1, 1) for n in ("bb8", "bb8", "BB-8", "r2d2", "R2-D2", "R2-D2")])]

    merged = images()
    assert apply_label_map(merged, None, {}, True, []) == {1: "R2-D2", 2: "bb8"}  # the spelling of most boxes
    assert [box.label for box in merged[0].boxes] == ["bb8", "bb8", "bb8", "R2-D2", "R2-D2", "R2-D2"]
    assert "--match-label-names: r2d2 → R2-D2, BB-8 → bb8 (names alike" in capsys.readouterr().out
    assert apply_label_map(images(), None, {}, False, []) == {1: "BB-8", 2: "R2-D2", 3: "bb8", 4: "r2d2"}
    assert capsys.readouterr().out.splitlines() == [
        "class names alike in case and punctuation stay separate classes: R2-D2 / r2d2; bb8 / BB-8 (--match-label-names merges them)"
    ]


def test_large_photos_are_stored_at_twice_the_model_input_with_their_boxes(tmp_path, capsys):
    """Training decodes and augments every image at its stored size on every step: a 1500x1000
    photo is stored at 600 px for the 300x300 default model, its box in the same place."""
    root = make_voc_dataset(tmp_path / "data", count=8, size=(96, 72))
    big = np.full((1000, 1500, 3), 120, np.uint8)
    big[200:600, 300:900] = (220, 40, 40)
    big[:3], big[-3:] = 0, 255
    Image.fromarray(big).save(root / "images" / "big.jpg", quality=95)
    (root / "annotations" / "big.xml").write_text(voc_xml("big.jpg", 1500, 1000, [("red", (300, 200, 900, 600))]), encoding="utf-8")

    prepared = prepare_dataset(root, tmp_path / "out", val_fraction=0.25)

    assert prepared.stored_max_side == 600
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["downscaled"] == 1
    assert "1 of 9 images downscaled to 600 px" in capsys.readouterr().out
    stored = {image.filename: image for image in tfrecords.read_records(sorted((tmp_path / "out").glob("*.record")))}
    big_stored = stored["big.jpg"]
    assert Image.open(io.BytesIO(big_stored.image_bytes)).size == (600, 400) == (big_stored.width, big_stored.height)
    box = big_stored.boxes[0]
    assert (box.xmin, box.ymin, box.xmax, box.ymax) == pytest.approx((120, 80, 360, 240), abs=0.5)
    small = next(i for i in stored.values() if i.filename != "big.jpg")
    assert small.image_bytes == (root / "images" / small.filename).read_bytes()  # small photos stored as they were


def test_a_fit_for_a_larger_input_than_prepared_says_so(tmp_path, capsys):
    from argparse import Namespace

    from livedroid.training.cli import _note_stored_size

    prepared = prepare_dataset(make_voc_dataset(tmp_path / "data"), tmp_path / "out", val_fraction=0.25)
    capsys.readouterr()
    _note_stored_size(prepared, Namespace(model="ssd_mobilenet_v2_300_coco_tf1", config=None))
    assert capsys.readouterr().out == ""
    _note_stored_size(prepared, Namespace(model="ssd_resnet50_v1_fpn_640", config=None))
    assert "less than the 1280 px ssd_resnet50_v1_fpn_640 can use; for full detail prepare with --model ssd_resnet50_v1_fpn_640" in capsys.readouterr().out
