"""Merging datasets, the split grouped by source video and near-duplicates, and ``livedroid eval``
without a training folder."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from livedroid.labelling.dataset import LabelBox, LabelledImage, LabellingFolder
from livedroid.training.dataset.prepare import read_annotations
from livedroid.training.dataset.split import grouped_split
from livedroid.training.dataset.validate import validate_images
from tests.conftest import REPO, needs_module, run_cli, shared_path
from tests.training.conftest import COLOURS, make_voc_dataset


def jpeg(pixels: np.ndarray, quality: int = 95) -> bytes:
    stream = io.BytesIO()
    Image.fromarray(pixels).save(stream, format="JPEG", quality=quality)
    return stream.getvalue()


def make_mined_folder(root: Path, videos: dict[str, str], frames: int = 6, seed: int = 1) -> Path:
    """A folder as ``mine`` writes it and ``review`` leaves it: per video (name → class), frames
    of a square drifting right over one background, each recorded with its source video."""
    folder = LabellingFolder(root)
    rng = np.random.default_rng(seed)
    records = []
    for video, label in videos.items():
        background = rng.integers(60, 200, (9, 12, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        for index in range(frames):
            pixels = background.copy()
            x = 10 + 2 * index
            pixels[20:50, x : x + 30] = COLOURS[label]
            name = f"{video}-f{index:06d}.jpg"
            folder.save_image(LabelledImage(name, 96, 72, [LabelBox(label, x, 20, x + 30, 50)]), jpeg(pixels))
            records.append({"image": name, "source": f"/videos/{video}.mp4", "frame": index * 10, "reasons": ["near threshold"]})
    folder.write_label_map({1: "blue", 2: "red"})
    folder.append_records(records)
    folder.write_coco()
    return root


def checked(source: Path) -> list:
    problems: list = []
    images = validate_images(read_annotations(source, None, problems), problems)
    assert not problems, problems
    return images


def test_frames_of_one_video_stay_on_one_side_of_the_split(tmp_path: Path) -> None:
    videos = {f"clip{n}": "red" if n % 2 else "blue" for n in range(6)}
    images = checked(make_mined_folder(tmp_path / "mined", videos))
    assert {i.origin for i in images} == {f"/videos/{v}.mp4" for v in videos}
    train, val, grouping = grouped_split(images, 0.34, seed=0)
    sides = {}
    for side, members in (("train", train), ("val", val)):
        for image in members:
            assert sides.setdefault(image.origin, side) == side, f"{image.origin} on both sides"
    assert grouping.by_source == 6 and grouping.train_groups + grouping.val_groups == 6
    assert {b.label for i in val for b in i.boxes} == {"red", "blue"}  # each class still reaches validation


def test_re_encoded_copies_without_a_source_are_grouped_by_hash(tmp_path: Path) -> None:
    star_wars = shared_path("datasets/star-wars")
    root = tmp_path / "photos"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    originals = sorted((star_wars / "annotations").glob("*.xml"))[::10]
    for xml in originals:
        shutil.copy(xml, root / "annotations")
        shutil.copy(star_wars / "images" / f"{xml.stem}.jpg", root / "images")
    for xml in originals[:4]:  # the same shot saved again, smaller and at a lower quality
        picture = Image.open(root / "images" / f"{xml.stem}.jpg")
        copy = f"{xml.stem}_copy.jpg"
        picture.resize((picture.width * 3 // 4, picture.height * 3 // 4)).resize(picture.size).save(root / "images" / copy, quality=70)
        text = xml.read_text()
        (root / "annotations" / f"{xml.stem}_copy.xml").write_text(text.replace(f"{xml.stem}.jpg", copy))
    images = checked(root)
    for seed in range(5):
        train, val, grouping = grouped_split(images, 0.3, seed)
        val_names = {Path(i.filename).name for i in val}
        for xml in originals[:4]:
            assert (f"{xml.stem}_copy.jpg" in val_names) == (f"{xml.stem}.jpg" in val_names)
    assert grouping.by_hash == len(originals)  # every copy joined its original, nothing else joined
    assert len(grouping.joined_by_hash) == 4


def test_train_prepare_merges_photos_and_a_mined_folder_and_says_how_many_groups(tmp_path: Path) -> None:
    photos = make_voc_dataset(tmp_path / "photos", count=12)
    mined = make_mined_folder(tmp_path / "mined", {"a": "red", "b": "blue", "c": "red", "d": "blue"})
    result = run_cli("train", "prepare", str(photos), str(mined), "--out", str(tmp_path / "prepared"), "--val-fraction", "0.25")
    assert result.returncode == 0, result.stderr
    assert "24 of 24 mined frames are not reviewed" in result.stdout
    summary = json.loads((tmp_path / "prepared" / "dataset.json").read_text())
    assert summary["source"] == [str(photos), str(mined)]
    assert summary["train"]["images"] + summary["val"]["images"] == 36
    groups = summary["groups"]
    assert groups["by_source"] == 4 and groups["train"] + groups["val"] == groups["by_source"] + groups["by_hash"]
    assert f"groups: {groups['train']} train, {groups['val']} val (4 by the source recorded at mining" in result.stdout


def test_a_merged_folder_with_another_class_gets_one_line(tmp_path: Path) -> None:
    photos = make_voc_dataset(tmp_path / "photos", count=8)
    (photos / "label_map.pbtxt").write_text('item { id: 1 name: "blue" }\nitem { id: 2 name: "red" }\n')
    mined = make_mined_folder(tmp_path / "mined", {"a": "red"})
    (mined / "label_map.pbtxt").write_text('item { id: 1 name: "red" }\nitem { id: 2 name: "person" }\n')
    result = run_cli("train", "prepare", str(photos), str(mined), "--out", str(tmp_path / "prepared"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"livedroid: error: {mined / 'label_map.pbtxt'} names person, which {photos / 'label_map.pbtxt'} lacks (blue, red): "
        "pass --label-map with every class, --label-alias NAME=LABEL, or leave that folder out"
    ]
    assert not (tmp_path / "prepared").exists()


def test_eval_measures_a_shipped_model_on_photos_without_a_training_folder(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(shared_path("datasets/star-wars"), photos, ignore=shutil.ignore_patterns("*_1?.*", "*_2?.*", "*_3?.*", "*_4?.*",
                                                                                          "*_5?.*", "*_6?.*", "*_7?.*", "*_8?.*", "*_9?.*", "*_1??.*"))
    result = run_cli("eval", str(REPO / "models" / "star-wars"), str(photos), "--match-label-names", "--out", str(tmp_path / "eval"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert {"mAP", "mAP@0.5", "mAP@0.75", "per_class_AP", "images", "model", "evaluated_on", "mistakes"} <= metrics.keys()
    assert set(metrics["per_class_AP"]) == {"BB-8", "R2-D2"}
    assert metrics["mAP@0.5"] > 0.5
    assert {"confusion", "missed", "duplicates", "false_alarms"} <= set(metrics["mistakes"]) or metrics["mistakes"]
    assert (tmp_path / "eval" / "contact_sheet.png").stat().st_size > 10_000
    assert "mAP@0.5" in result.stdout


@pytest.mark.parametrize(
    "argv, words",
    [
        (["models/no-such-model", "PHOTOS"], "model"),
        (["models/coco-ssd-mobilenet-v2", "PHOTOS"], "not in the label map"),
        (["models/star-wars", "PHOTOS", "--match-label-names", "-t", "1.5"], "argument -t/--threshold: expected a score above 0 and below 1, got 1.5"),
        (["models/star-wars", "NOWHERE", "--match-label-names"], "not found"),
    ],
)
def test_eval_bad_input_gets_one_line(tmp_path: Path, argv: list[str], words: str) -> None:
    photos = make_voc_dataset(tmp_path / "photos", count=4)
    argv = [str(photos) if a == "PHOTOS" else str(tmp_path / "nowhere") if a == "NOWHERE" else a for a in argv]
    result = run_cli("eval", *argv, "--out", str(tmp_path / "eval"), cwd=REPO)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("livedroid: error:") and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    # One line, except the unknown-names message, which lists each name with its files and fix.
    assert len(result.stderr.strip().splitlines()) == 1 or "did you mean" in result.stderr


@pytest.mark.slow
def test_a_merged_retrain_then_eval_of_the_model_it_wrote(tmp_path: Path) -> None:
    """``livedroid train PHOTOS MINED --out`` end to end (a few steps teach nothing: this checks
    that the merged dataset flows through every stage), then ``livedroid eval`` on what it wrote."""
    needs_module("object_detection", "the Object Detection API (pip install 'livedroid[train]') is not installed")
    photos = make_voc_dataset(tmp_path / "photos", count=8)
    mined = make_mined_folder(tmp_path / "mined", {"a": "red", "b": "blue"}, frames=3)
    model = tmp_path / "models" / "merged"
    result = run_cli("train", str(photos), str(mined), "--out", str(model), "--work-dir", str(tmp_path / "work"),
                     "--steps", "2", "--val-fraction", "0.25", "--model", "ssd_mobilenet_v2_320", "--batch-size", "2",
                     "--pretrained", "none", timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "work" / "dataset" / "dataset.json").read_text())
    assert summary["train"]["images"] + summary["val"]["images"] == 14 and summary["groups"]["by_source"] == 2
    evaluated = run_cli("eval", str(model), str(mined), "--out", str(tmp_path / "eval"))
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["images"] == 6
