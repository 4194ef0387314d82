"""The pre-flight of ``prepare``: figures against the model's input and limits, advice, --dry-run,
and bad input (objects of a pixel or two, grey, 16-bit, 1x1 images) found before any fit."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from livedroid.errors import UserError
from livedroid.training.cli import main
from livedroid.training.dataset.preflight import model_geometry, read_text_proto
from livedroid.training.dataset.prepare import prepare_dataset
from livedroid.training.dataset.tfrecords import find_record_files, read_records
from livedroid.training.pipeline import TEMPLATES_DIR

from .conftest import make_voc_dataset, voc_xml


def _boxes_dataset(root: Path, boxes_per_image: list[list[tuple[str, tuple[int, int, int, int]]]], size=(640, 640), seed=0) -> Path:
    """One JPEG (noise, each box a coloured rectangle) and VOC XML per entry of ``boxes_per_image``."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir(parents=True)
    for index, objects in enumerate(boxes_per_image):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        for name, (x0, y0, x1, y1) in objects:
            pixels[y0:y1, x0:x1] = (220, 30, 30) if name == "red" else (30, 60, 220)
        Image.fromarray(pixels).save(root / "images" / f"{index}.jpg", quality=90)
        (root / "annotations" / f"{index}.xml").write_text(voc_xml(f"{index}.jpg", *size, objects), encoding="utf-8")
    return root


def test_text_proto_reader_reads_nesting_lists_and_comments():
    fields = read_text_proto('a { b: 3 c: [1.5, 2] }  # note: { not a field\n d: "x y" e <f: true>')
    assert fields == {"a": [{"b": ["3"], "c": ["1.5", "2"]}], "d": ["x y"], "e": [{"f": ["true"]}]}
    with pytest.raises(IndexError):
        read_text_proto("a { b: 3")


@pytest.mark.parametrize(
    "template, size, anchor",
    [
        ("ssd_mobilenet_v2_300_coco_tf1", 300, 30.0),  # the lowest layer's 0.1-scale anchor, not min_scale 0.2
        ("ssd_mobilenet_v2_fpnlite_320", 320, 32.0),  # stride 2**3 times anchor_scale 4
        ("ssd_resnet50_v1_fpn_640", 640, 32.0),
    ],
)
def test_model_geometry_is_read_from_the_template(template, size, anchor):
    geometry = model_geometry(TEMPLATES_DIR / f"{template}.config")
    assert (geometry.width, geometry.height, geometry.smallest_anchor) == (size, size, pytest.approx(anchor))
    assert (geometry.max_total, geometry.max_per_class) == (100, 100)
    assert model_geometry(None).name == "ssd_mobilenet_v2_300_coco_tf1"


def test_prepare_prints_and_keeps_the_preflight(tmp_path, capsys):
    # 640x640 frames, 40-px boxes: 18.75 px at the 300x300 input, under its 30-px smallest anchor
    # (and over the 32-px one of the 640x640 template).
    images = [[("red", (100 + 7 * i, 100, 140 + 7 * i, 140)), ("blue", (300, 300 + 5 * i, 340, 340 + 5 * i))] for i in range(10)]
    prepared = prepare_dataset(_boxes_dataset(tmp_path / "data", images), tmp_path / "out")
    printed = capsys.readouterr().out
    preflight = json.loads((prepared.folder / "dataset.json").read_text(encoding="utf-8"))["preflight"]
    assert preflight["model"]["name"] == "ssd_mobilenet_v2_300_coco_tf1"
    assert preflight["object_size"]["histogram"] == {"16-32": 20}
    assert preflight["object_size"]["under_smallest_anchor"] == 20
    assert preflight["boxes_per_image"] == {"max": 2, "p95": 2, "mean": 2.0, "max_of_one_class": 1, "limit": 100, "limit_per_class": 100}
    assert preflight["classes"]["red"] == {"boxes": 10, "images": 10, "share": 0.5}
    assert preflight["images"]["negatives"] == 0
    assert "pre-flight for ssd_mobilenet_v2_300_coco_tf1 (300x300 input, smallest anchor 30 px" in printed
    assert "20 of 20 (100.0%) under the smallest anchor (30 px)" in printed
    assert "'livedroid run --tiles --tile-size 384'" in printed  # 40 px * 300 / 30 = 400, down to a multiple of 32
    assert "--model ssd_resnet50_v1_fpn_640 (640x640, ssd_resnet50_v1_fpn_keras): 0 of 20 boxes" in printed
    assert "red: in 10 images only: annotate more images of red" in printed  # under a few dozen
    assert "near-duplicates" not in printed.split("what to try:")[1]  # noise images: no two alike


def test_advice_only_where_the_figures_call_for_it(voc_dataset, tmp_path, capsys):
    """The tiny dataset's objects are large and few per image: no size or crowding advice."""
    prepare_dataset(make_voc_dataset(tmp_path / "many", count=80), tmp_path / "out")
    printed = capsys.readouterr().out
    assert "pre-flight for" in printed
    assert "--tiles" not in printed and "--max-detections" not in printed and "annotate more" not in printed


def test_crowded_images_are_told_to_raise_max_detections(tmp_path, capsys):
    grid = [("red" if k % 2 else "blue", (20 * (k % 30), 20 * (k // 30), 20 * (k % 30) + 16, 20 * (k // 30) + 16)) for k in range(90)]
    prepare_dataset(_boxes_dataset(tmp_path / "data", [grid] * 4, seed=1), tmp_path / "out", dry_run=True)
    printed = capsys.readouterr().out
    assert "boxes per image: max 90, p95 90, mean 90.0 (the model keeps at most 100, 100 of a class)" in printed
    assert "--max-detections 180" in printed


def test_frames_of_one_scene_are_told_apart_from_new_scenes(tmp_path, capsys):
    root = _boxes_dataset(tmp_path / "data", [[("red", (100, 100, 300, 300))]] * 6)
    base = np.asarray(Image.open(root / "images" / "0.jpg"))
    for index in range(6):  # one picture, each copy one pixel different: six files, one scene
        copy = base.copy()
        copy[0, index] = 255 - copy[0, index]
        Image.fromarray(copy).save(root / "images" / f"{index}.jpg", quality=90)
    assert prepare_dataset(root, tmp_path / "out", dry_run=True) is None
    assert "near-duplicates: 6 images are 1 scene (0 of them in validation)" in capsys.readouterr().out


def test_objects_of_a_pixel_or_two_stop_before_anything_is_written(tmp_path, capsys):
    images = [[("red", (100 + 9 * i, 100, 104 + 9 * i, 104))] for i in range(6)]  # 4 px at 640: 1.9 px at the input
    with pytest.raises(UserError, match="every object is under 4 px at the model's 300x300 input"):
        prepare_dataset(_boxes_dataset(tmp_path / "data", images), tmp_path / "out")
    assert "pre-flight for" in capsys.readouterr().out
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_prepare_dry_run_prints_the_preflight_and_writes_nothing(voc_dataset, tmp_path, capsys):
    assert main(["prepare", str(voc_dataset), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "pre-flight for ssd_mobilenet_v2_300_coco_tf1" in printed
    assert f"dry run: stopped after the pre-flight; nothing written to {tmp_path / 'out'}" in printed
    assert not (tmp_path / "out").exists()


def test_train_dry_run_measures_against_the_chosen_model_and_stops_before_fit(voc_dataset, tmp_path, capsys):
    work = tmp_path / "work"
    argv = [str(voc_dataset), "--out", str(tmp_path / "model"), "--work-dir", str(work), "--dry-run",
            "--model", "ssd_resnet50_v1_fpn_640", "--max-detections", "5"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "pre-flight for ssd_resnet50_v1_fpn_640 (640x640 input" in printed
    assert "the model keeps at most 5," in printed
    assert "== 2/" not in printed
    assert not work.exists() and not (tmp_path / "model").exists()


def test_a_class_with_one_image_gets_its_preflight_then_one_line(voc_dataset, tmp_path, capsys):
    for path in sorted((voc_dataset / "annotations").glob("blue_*.xml"))[1:]:
        path.unlink()
    assert main(["prepare", str(voc_dataset), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    out, err = capsys.readouterr()
    assert "blue 1 box in 1 image (" in out
    assert "livedroid: error: " in err and "too few images to train and validate: blue (1)" in err


def _replace_image(root: Path, name: str, picture: Image.Image, box: tuple[int, int, int, int], suffix: str) -> None:
    """Swap ``name``'s JPEG for ``picture`` (saved as ``suffix``) and its XML for one box."""
    (root / "images" / f"{name}.jpg").unlink()
    picture.save(root / "images" / f"{name}{suffix}")
    label = name.split("_")[0]
    xml = voc_xml(f"{name}{suffix}", *picture.size, [(label, box)])
    (root / "annotations" / f"{name}.xml").write_text(xml, encoding="utf-8")


def test_grey_16_bit_and_1x1_images_are_found_and_written_as_training_reads_them(voc_dataset, tmp_path, capsys):
    sixteen = np.full((72, 96), 40000, np.uint16)
    sixteen[20:50, 30:70] = 10000
    _replace_image(voc_dataset, "red_0", Image.fromarray(sixteen), (30, 20, 70, 50), ".png")
    _replace_image(voc_dataset, "blue_1", Image.fromarray(np.full((72, 96), 90, np.uint8)), (10, 10, 60, 50), ".jpg")
    _replace_image(voc_dataset, "red_2", Image.new("RGB", (1, 1), (220, 30, 30)), (0, 0, 1, 1), ".png")

    prepared = prepare_dataset(voc_dataset, tmp_path / "out")
    printed = capsys.readouterr().out
    assert "grey (single-channel): 2" in printed  # the grey JPEG, and the 16-bit image, now 8-bit grey
    assert "16-bit: 1, converted to 8 bits" in printed
    assert "1 image under 32 px a side, scaled up to the input: annotations/red_2.xml (1x1)" in printed
    figures = json.loads((prepared.folder / "dataset.json").read_text(encoding="utf-8"))["preflight"]["images"]
    assert (figures["grey"], figures["sixteen_bit_converted"], figures["under_32_px"], figures["smallest"]) == (2, 1, 1, [1, 1])

    records = read_records(find_record_files(prepared.folder))
    written = next(r for r in records if r.filename.endswith("red_0.png"))
    # As TensorFlow's PNG decoder reads a 16-bit file (the high byte), so eval and int8 calibration see it alike.
    pixels = np.asarray(Image.open(io.BytesIO(written.image_bytes)).convert("RGB"))
    assert pixels[0, 0].tolist() == [40000 >> 8] * 3 and pixels[30, 40].tolist() == [10000 >> 8] * 3
