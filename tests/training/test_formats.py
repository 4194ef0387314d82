"""Formats in and out (#30 item 6): exports of the shared raccoon set in YOLO (Ultralytics and
Roboflow layouts), CVAT for images 1.1, Label Studio and COCO (CVAT's and Roboflow's layouts) read
back with the boxes the VOC original holds; written out by ``train convert``; refused in one line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from livedroid.annotations import Problem
from livedroid.errors import UserError
from livedroid.training.dataset.convert import convert_dataset
from livedroid.training.dataset.prepare import read_annotations, read_dataset
from livedroid.training.dataset.validate import validate_images
from tests.conftest import run_cli, shared_path
from tests.training.conftest import make_voc_dataset
from tests.training.test_merge_split_eval import make_mined_folder

RACCOONS = 16  # enough for a train and a val side, few enough for seconds


@pytest.fixture
def raccoon(tmp_path: Path) -> Path:
    """The first raccoon photos of ../shared with their labelImg XML, as a VOC folder."""
    shared = shared_path("datasets/raccoon")
    root = tmp_path / "raccoon"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for index in range(1, RACCOONS + 1):
        shutil.copy(shared / "images" / f"raccoon-{index}.jpg", root / "images")
        shutil.copy(shared / "annotations" / f"raccoon-{index}.xml", root / "annotations")
    return root


def boxes_by_image(source: Path, images_dir: Path | None = None) -> dict[str, list[tuple]]:
    """What ``prepare`` reads and keeps of ``source``: file name → its boxes (label, corners), sorted."""
    problems: list[Problem] = []
    checked = validate_images(read_annotations(source, images_dir, problems), problems)
    return {image.filename: sorted((b.label, b.xmin, b.ymin, b.xmax, b.ymax) for b in image.boxes) for image in checked}


def assert_same_boxes(found: dict, expected: dict) -> None:
    assert sorted(found) == sorted(expected)
    for name, boxes in expected.items():
        assert [b[0] for b in found[name]] == [b[0] for b in boxes], name
        assert [b[1:] for b in found[name]] == [pytest.approx(b[1:], abs=0.01) for b in boxes], name


# Exports made from the VOC folder: each returns what to pass to prepare (and its --images). -----


def yolo_ultralytics(voc: Path, out: Path) -> tuple[Path, None]:
    convert_dataset([voc], out, "yolo")
    return out, None


def yolo_data_yaml(voc: Path, out: Path) -> tuple[Path, None]:
    convert_dataset([voc], out, "yolo")
    return out / "data.yaml", None


def yolo_roboflow(voc: Path, out: Path) -> tuple[Path, None]:
    """Roboflow's layout: train/images, train/labels, valid/…, and '../train/images' in data.yaml."""
    ultralytics = out.with_name("ultralytics")
    convert_dataset([voc], ultralytics, "yolo")
    for split, folder in (("train", "train"), ("val", "valid")):
        for kind in ("images", "labels"):
            shutil.copytree(ultralytics / kind / split, out / folder / kind)
    names = yaml.safe_load((ultralytics / "data.yaml").read_text())["names"]
    config = {"train": "../train/images", "val": "../valid/images", "nc": len(names), "names": list(names.values())}
    (out / "data.yaml").write_text(yaml.safe_dump(config))
    return out, None


def yolo_darknet(voc: Path, out: Path, names_file: str = "classes.txt", folder: str = ".") -> tuple[Path, None]:
    """labelImg's YOLO mode: each image with its .txt beside it and classes.txt, one name a line."""
    ultralytics = out.with_name("ultralytics")
    convert_dataset([voc], ultralytics, "yolo")
    (out / folder).mkdir(parents=True)
    for path in [*ultralytics.glob("images/*/*"), *ultralytics.glob("labels/*/*")]:
        shutil.copy(path, out / folder)
    (out / names_file).write_text("\n".join(yaml.safe_load((ultralytics / "data.yaml").read_text())["names"].values()) + "\n")
    return out, None


def yolo_cvat_1_1(voc: Path, out: Path) -> tuple[Path, None]:
    """CVAT's "YOLO 1.1" export: obj.names, obj_train_data/ with the images and their .txt."""
    return yolo_darknet(voc, out, "obj.names", "obj_train_data")


def coco_cvat_subsets(voc: Path, out: Path) -> tuple[Path, None]:
    """What ``convert --to coco`` writes: annotations/instances_SPLIT.json beside images/SPLIT."""
    convert_dataset([voc], out, "coco")
    return out, None


def coco_cvat_default(voc: Path, out: Path) -> tuple[Path, None]:
    """CVAT's COCO 1.0 export of one subset: annotations/instances_default.json beside images/."""
    images, annotations = _pixel_boxes(voc)
    categories = [{"id": 1, "name": "raccoon", "supercategory": ""}]
    entries, objects = [], []
    for image_id, (name, (width, height, boxes)) in enumerate(annotations.items(), start=1):
        entries.append({"id": image_id, "file_name": name, "width": width, "height": height})
        for label, x0, y0, x1, y1 in boxes:
            objects.append({"id": len(objects) + 1, "image_id": image_id, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                            "area": (x1 - x0) * (y1 - y0), "iscrowd": 0, "segmentation": [], "attributes": {"occluded": False}})
    (out / "annotations").mkdir(parents=True)
    (out / "annotations" / "instances_default.json").write_text(json.dumps({"licenses": [], "info": {}, "categories": categories, "images": entries, "annotations": objects}))
    shutil.copytree(images, out / "images")
    return out, None


def coco_roboflow_splits(voc: Path, out: Path) -> tuple[Path, None]:
    """Roboflow's COCO export: train/_annotations.coco.json and valid/… beside their images."""
    cvat_layout = out.with_name("cvat-coco")
    convert_dataset([voc], cvat_layout, "coco")
    for split, folder in (("train", "train"), ("val", "valid")):
        shutil.copytree(cvat_layout / "images" / split, out / folder)
        shutil.copy(cvat_layout / "annotations" / f"instances_{split}.json", out / folder / "_annotations.coco.json")
    return out, None


def cvat_for_images(voc: Path, out: Path) -> tuple[Path, None]:
    """CVAT for images 1.1: annotations.xml with <image><box/></image>, images in images/."""
    images, annotations = _pixel_boxes(voc)
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta><task><name>raccoons</name></task></meta>']
    for image_id, (name, (width, height, boxes)) in enumerate(annotations.items()):
        parts.append(f'<image id="{image_id}" name="{name}" width="{width}" height="{height}">')
        parts += [f'<box label="{label}" source="manual" occluded="0" xtl="{x0:.2f}" ytl="{y0:.2f}" xbr="{x1:.2f}" ybr="{y1:.2f}" z_order="0"></box>'
                  for label, x0, y0, x1, y1 in boxes]
        parts.append("</image>")
    parts.append("</annotations>")
    out.mkdir(parents=True)
    (out / "annotations.xml").write_text("\n".join(parts))
    shutil.copytree(images, out / "images")
    return out, None


def label_studio(voc: Path, out: Path) -> tuple[Path, Path]:
    """A Label Studio JSON export of uploaded images (8-hex prefix); the images stay elsewhere."""
    images, annotations = _pixel_boxes(voc)
    tasks = []
    for task_id, (name, (width, height, boxes)) in enumerate(annotations.items(), start=1):
        results = [{"id": f"r{task_id}-{n}", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
                    "original_width": width, "original_height": height, "image_rotation": 0,
                    "value": {"x": x0 / width * 100, "y": y0 / height * 100, "width": (x1 - x0) / width * 100,
                              "height": (y1 - y0) / height * 100, "rotation": 0, "rectanglelabels": [label]}}
                   for n, (label, x0, y0, x1, y1) in enumerate(boxes)]
        tasks.append({"id": task_id, "data": {"image": f"/data/upload/3/{task_id:08x}-{name}"},
                      "annotations": [{"id": task_id, "result": results, "was_cancelled": False}], "predictions": []})
    out.mkdir(parents=True)
    export = out / "project-3-at-2026-12-07-18-00-1a2b3c4d.json"
    export.write_text(json.dumps(tasks))
    return export, images


def _pixel_boxes(voc: Path) -> tuple[Path, dict[str, tuple[int, int, list[tuple]]]]:
    """The VOC folder's images folder and, per image, its size and (validated) boxes."""
    problems: list[Problem] = []
    checked = validate_images(read_annotations(voc, None, problems), problems)
    return voc / "images", {c.filename: (c.width, c.height, [(b.label, b.xmin, b.ymin, b.xmax, b.ymax) for b in c.boxes]) for c in checked}


@pytest.mark.parametrize(
    "export",
    [yolo_ultralytics, yolo_data_yaml, yolo_roboflow, yolo_darknet, yolo_cvat_1_1, coco_cvat_subsets, coco_cvat_default, coco_roboflow_splits, cvat_for_images, label_studio],
    ids=lambda export: export.__name__,
)
def test_an_export_reads_back_the_boxes_of_the_original(raccoon: Path, tmp_path: Path, export) -> None:
    source, images_dir = export(raccoon, tmp_path / "export")
    assert_same_boxes(boxes_by_image(source, images_dir), boxes_by_image(raccoon))


@pytest.mark.parametrize("to", ["yolo", "coco", "voc"])
def test_a_mined_folder_converts_with_its_boxes(tmp_path: Path, to: str) -> None:
    mined = make_mined_folder(tmp_path / "mined", {"a": "red", "b": "blue", "c": "red", "d": "blue"})
    convert_dataset([mined], tmp_path / to, to)
    assert_same_boxes(boxes_by_image(tmp_path / to), boxes_by_image(mined))


@pytest.mark.parametrize("export", [yolo_ultralytics, cvat_for_images], ids=lambda export: export.__name__)
def test_an_export_converted_to_voc_opens_in_review_with_every_box(raccoon: Path, tmp_path: Path, export) -> None:
    """'--to voc' writes the labelImg folder review edits, with every image and box of the original
    (review also opens the export itself: tests/labelling/test_review_formats.py)."""
    from livedroid.labelling.review import open_folder, start_review

    source, _ = export(raccoon, tmp_path / "export")
    convert_dataset([source], tmp_path / "export-voc", "voc")
    review = start_review(*open_folder(tmp_path / "export-voc"))
    assert len(review.names) == RACCOONS and review.label_map == {1: "raccoon"}
    assert_same_boxes(boxes_by_image(tmp_path / "export-voc"), boxes_by_image(raccoon))


def test_merged_folders_with_the_same_file_names_convert_to_distinct_files(tmp_path: Path) -> None:
    first, second = make_voc_dataset(tmp_path / "a", count=4), make_voc_dataset(tmp_path / "b", count=4, seed=1)
    convert_dataset([first, second], tmp_path / "coco", "coco", val_fraction=0)
    written = sorted(p.name for p in (tmp_path / "coco" / "images" / "train").iterdir())
    assert written == ["blue_1.jpg", "blue_1_2.jpg", "blue_3.jpg", "blue_3_2.jpg", "red_0.jpg", "red_0_2.jpg", "red_2.jpg", "red_2_2.jpg"]
    assert sum(len(boxes) for boxes in boxes_by_image(tmp_path / "coco").values()) == 8


def test_the_roboflow_coco_export_in_shared_reads_as_it_is() -> None:
    found = boxes_by_image(shared_path("datasets/person-drone"))
    assert len(found) == 85 and {box[0] for boxes in found.values() for box in boxes} == {"person"}


def test_yolo_background_and_unlabelled_images(raccoon: Path, tmp_path: Path, capsys) -> None:
    """An empty label file is a background image; an image with no label file is left out, counted."""
    convert_dataset([raccoon], tmp_path / "yolo", "yolo", val_fraction=0)
    labels = sorted((tmp_path / "yolo" / "labels" / "train").glob("*.txt"))
    labels[0].write_text("")
    labels[1].unlink()
    capsys.readouterr()
    read, _ = read_dataset([tmp_path / "yolo"], None, None, {}, False, [])
    assert len(read) == RACCOONS - 1
    assert [image.boxes for image in read if image.filename == labels[0].stem + ".jpg"] == [[]]
    assert re.search(r"\b1 unlabelled images? left out", capsys.readouterr().out)


def _yolo_label(tmp_path: Path, raccoon: Path, line: str) -> Path:
    convert_dataset([raccoon], tmp_path / "yolo", "yolo", val_fraction=0)
    (tmp_path / "yolo" / "labels" / "train" / "raccoon-3.txt").write_text(f"0 0.5 0.5 0.2 0.2\n{line}\n")
    return tmp_path / "yolo"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("3 0.5 0.5 0.2 0.2", "labels/train/raccoon-3.txt line 2: class 3 is not in data.yaml's names (0: raccoon): fix the label files or add the class"),
        ("0 120 80 40 30", "labels/train/raccoon-3.txt line 2: box 120 80 40 30 reaches past the image (YOLO coordinates are fractions 0-1"),
        ("0 0.95 0.5 0.2 0.2", "labels/train/raccoon-3.txt line 2: box 0.95 0.5 0.2 0.2 reaches past the image"),
    ],
    ids=["class not in data.yaml", "pixel coordinates", "past the right edge"],
)
def test_yolo_labels_that_are_not_of_the_dataset_are_refused_in_one_line(raccoon: Path, tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(UserError) as refused:
        read_annotations(_yolo_label(tmp_path, raccoon, line), None, [])
    assert message in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("line", ["0 nan 0.5 0.2 0.2", "0 0.5 0.5 0.2", "raccoon 0.5 0.5 0.2 0.2"])
def test_a_malformed_yolo_line_is_a_located_dropped_box(raccoon: Path, tmp_path: Path, line: str) -> None:
    problems: list[Problem] = []
    read = read_annotations(_yolo_label(tmp_path, raccoon, line), None, problems)
    assert [(p.where, p.action) for p in problems] == [("labels/train/raccoon-3.txt line 2", "dropped box")]
    assert [len(image.boxes) for image in read if image.filename == "raccoon-3.jpg"] == [1]


def _label_studio_elsewhere(raccoon: Path, tmp_path: Path) -> Path:
    export, _ = label_studio(raccoon, tmp_path / "export")
    return export


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda raccoon, tmp: _label_studio_elsewhere(raccoon, tmp),
         "none of its 16 images (e.g. 00000001-raccoon-1.jpg) is in {tmp}/export or {tmp}/export/images: pass --images"),
        (lambda raccoon, tmp: (raccoon / "images").rename(tmp / "just-images") and tmp / "just-images",
         "no annotations found in {tmp}/just-images: expected a folder 'livedroid mine' wrote, Pascal VOC .xml files"),
        (lambda raccoon, tmp: (convert_dataset([raccoon], tmp / "y", "yolo"), (tmp / "y" / "data.yaml").unlink()) and tmp / "y",
         "{tmp}/y has YOLO labels/ but no data.yaml (names:, train:, val:) or classes.txt naming the classes"),
    ],
    ids=["label studio images not found", "no format", "yolo without data.yaml"],
)
def test_a_dataset_that_cannot_be_read_is_one_line(raccoon: Path, tmp_path: Path, make, message: str) -> None:
    with pytest.raises(UserError) as refused:
        read_annotations(make(raccoon, tmp_path), None, [])
    assert message.format(tmp=tmp_path) in str(refused.value) and "\n" not in str(refused.value)


def test_convert_writes_nothing_into_a_folder_in_use(raccoon: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    with pytest.raises(UserError, match="exists and is not empty"):
        convert_dataset([raccoon], tmp_path / "out", "coco")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["mine.txt"]


def test_prepare_reads_a_yolo_folder_as_typed(raccoon: Path, tmp_path: Path) -> None:
    convert_dataset([raccoon], tmp_path / "yolo", "yolo")
    result = run_cli("train", "prepare", str(tmp_path / "yolo"), "--out", str(tmp_path / "prepared"))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "prepared" / "dataset.json").read_text())
    assert summary["train"]["images"] + summary["val"]["images"] == RACCOONS
    assert "the export's split (train" in result.stdout


def test_convert_as_typed(raccoon: Path, tmp_path: Path) -> None:
    command = ("train", "convert", str(raccoon), "--to", "yolo", "--out", str(tmp_path / "yolo"))
    written = run_cli(*command)
    assert written.returncode == 0, written.stderr
    assert f"{tmp_path / 'yolo'}: YOLO, train" in written.stdout
    assert yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text())["names"] == {0: "raccoon"}
    again = run_cli(*command)
    assert again.returncode == 2
    assert again.stderr.strip() == f"livedroid: error: {tmp_path / 'yolo'} exists and is not empty: pass a new --out folder"


def _rotated_label_studio(folder: Path) -> Path:
    value = {"x": 50, "y": 10, "width": 10, "height": 20, "rotation": 90, "rectanglelabels": ["raccoon"]}
    task = {"id": 1, "data": {"image": "/data/local-files/?d=photos/raccoon-1.jpg"},
            "annotations": [{"result": [{"type": "rectanglelabels", "original_width": 200, "original_height": 100, "value": value}]}]}
    (folder / "export.json").write_text(json.dumps([task]))
    return folder / "export.json"


def _rotated_cvat(folder: Path) -> Path:
    (folder / "annotations.xml").write_text(
        '<annotations><image id="0" name="raccoon-1.jpg" width="200" height="100">'
        '<box label="raccoon" xtl="10" ytl="10" xbr="30" ybr="20" rotation="90"/><polygon label="raccoon" points="1,1;5,5;1,5"/>'
        "</image></annotations>"
    )
    return folder / "annotations.xml"


@pytest.mark.parametrize(
    ("make", "hull", "notes"),
    [(_rotated_label_studio, (80, 10, 100, 30), ["rotated 90°"]), (_rotated_cvat, (15, 5, 25, 25), ["box rotated 90°", "1 polygon left out"])],
    ids=["label studio, about the top-left corner", "cvat, about the centre"],
)
def test_a_rotated_box_reads_as_its_upright_hull(raccoon: Path, make, hull: tuple, notes: list[str]) -> None:
    problems: list[Problem] = []
    [image] = read_annotations(make(raccoon / "images"), None, problems)
    assert [(b.xmin, b.ymin, b.xmax, b.ymax) for b in image.boxes] == [pytest.approx(hull)]
    assert [p.action for p in problems] == ["note"] * len(notes)
    assert all(note in p.what for note, p in zip(notes, problems))
