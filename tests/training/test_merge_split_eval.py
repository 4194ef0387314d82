"""Merging datasets, the split grouped by source video and near-duplicates, and ``livedroid eval``
without a training folder."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from livedroid.annotations import AnnotatedImage, Box
from livedroid.errors import UserError
from livedroid.labelling.dataset import LabellingFolder
from livedroid.training.dataset.prepare import prepare_dataset, read_annotations
from livedroid.training.dataset.split import grouped_split
from livedroid.training.dataset.validate import validate_images
from tests.conftest import REPO, run_cli, shared_path
from tests.training.conftest import COLOURS, jpeg, make_mined_folder, make_voc_dataset


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


def test_train_prepare_merges_photos_and_a_mined_folder_and_says_how_many_groups(tmp_path: Path, livedroid_main) -> None:
    photos = make_voc_dataset(tmp_path / "photos", count=12)
    mined = make_mined_folder(tmp_path / "mined", {"a": "red", "b": "blue", "c": "red", "d": "blue"})
    result = livedroid_main("train", "prepare", str(photos), str(mined), "--out", str(tmp_path / "prepared"), "--val-fraction", "0.25")
    assert result.returncode == 0, result.stderr
    assert "24 of 24 mined frames are not reviewed" in result.stdout
    summary = json.loads((tmp_path / "prepared" / "dataset.json").read_text())
    assert summary["source"] == [str(photos), str(mined)]
    assert summary["train"]["images"] + summary["val"]["images"] == 36
    groups = summary["groups"]
    assert groups["by_source"] == 4 and groups["train"] + groups["val"] == groups["by_source"] + groups["by_hash"]
    assert f"groups: {groups['train']} train, {groups['val']} val (4 by the source recorded at mining" in result.stdout


def test_a_merged_folder_with_another_class_gets_one_line(tmp_path: Path, livedroid_main) -> None:
    photos = make_voc_dataset(tmp_path / "photos", count=8)
    (photos / "label_map.pbtxt").write_text('item { id: 1 name: "blue" }\nitem { id: 2 name: "red" }\n')
    mined = make_mined_folder(tmp_path / "mined", {"a": "red"})
    (mined / "label_map.pbtxt").write_text('item { id: 1 name: "red" }\nitem { id: 2 name: "person" }\n')
    result = livedroid_main("train", "prepare", str(photos), str(mined), "--out", str(tmp_path / "prepared"))
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
        (["models/star-wars", "PHOTOS", "--tiles", "--tile-size", "8"], "argument --tile-size"),
    ],
)
def test_eval_bad_input_gets_one_line(tmp_path: Path, argv: list[str], words: str, livedroid_main) -> None:
    photos = make_voc_dataset(tmp_path / "photos", count=4)
    argv = [str(photos) if a == "PHOTOS" else str(tmp_path / "nowhere") if a == "NOWHERE" else a for a in argv]
    result = livedroid_main("eval", *argv, "--out", str(tmp_path / "eval"), cwd=REPO)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("livedroid: error:") and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    # One line, except the unknown-names message, which lists each name with its files and fix.
    assert len(result.stderr.strip().splitlines()) == 1 or "did you mean" in result.stderr


def make_clip_folder(root: Path, labels: list[str | None], states: dict[int, str] | None = None,
                     label_map: dict[int, str] | None = None) -> Path:
    """A folder mined from one clip, a frame a second: frame k shows a square of ``labels[k]``
    (None: an empty frame), recorded with its time; ``states`` gives review states by frame."""
    folder = LabellingFolder(root)
    background = np.random.default_rng(3).integers(60, 200, (9, 12, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    records = []
    for index, label in enumerate(labels):
        pixels, boxes = background.copy(), []
        pixels[66:70, 3 * index : 3 * index + 3] = 255  # a clock: no two frames alike
        x = 4 + 2 * index
        if label:
            pixels[20:50, x : x + 30] = COLOURS[label]
            boxes = [Box(label, x, 20, x + 30, 50)]
        name = f"lot-f{index:06d}.jpg"
        folder.save_image(AnnotatedImage(name, name, boxes, width=96, height=72), jpeg(pixels))
        records.append({"image": name, "source": "/videos/lot.mp4", "frame": index * 25, "timestamp": float(index)})
    folder.write_label_map(label_map or {1: "blue", 2: "red"})
    folder.append_records(records)
    for index, state in (states or {}).items():
        folder.write_review_state(f"lot-f{index:06d}.jpg", state)
    return root


def test_a_folder_from_one_clip_is_split_along_time_with_a_gap(tmp_path: Path, livedroid_main) -> None:
    mined = make_clip_folder(tmp_path / "mined", ["red"] * 12 + ["blue"] * 13)
    result = livedroid_main("train", "prepare", str(mined), "--out", str(tmp_path / "prepared"), "--val-fraction", "0.2")
    assert result.returncode == 0, result.stderr
    # The validation block straddles the moment blue comes in, so both classes are on both sides.
    assert "groups: 1 train, 1 val (1 by the source recorded at mining" in result.stdout
    assert ("one video (lot.mp4): split along time, frames 0.0-9.0 s and 17.0-24.0 s train, 11.0-15.0 s val, "
            "2 frames within 2 s of the cut left out") in result.stdout
    summary = json.loads((tmp_path / "prepared" / "dataset.json").read_text())
    assert (summary["train"]["images"], summary["val"]["images"]) == (18, 5)
    assert summary["groups"]["split_along_time"] == [
        {"origin": "/videos/lot.mp4", "train": 18, "val": 5, "val_seconds": [11.0, 15.0], "left_out": 2, "gap_seconds": 2.0}
    ]


def test_one_class_clip_keeps_its_last_seconds_for_validation(tmp_path: Path) -> None:
    images = checked(make_clip_folder(tmp_path / "mined", ["red"] * 25))
    train, val, grouping = grouped_split(images, 0.2, seed=0)
    assert sorted(i.timestamp for i in val) == [20.0, 21.0, 22.0, 23.0, 24.0]
    assert max(i.timestamp for i in train) == 18.0 and len(train) == 19  # 19 s is within 2 s of the cut
    assert grouping.along_time[0].summary().endswith("frames 0.0-18.0 s train, 20.0-24.0 s val, 1 frame within 2 s of the cut left out")


def test_a_reviewed_empty_frame_is_background_and_unboxed_mined_classes_are_dropped(tmp_path: Path, capsys) -> None:
    labels = ["red", "blue"] * 8 + [None, None, None]
    mined = make_clip_folder(tmp_path / "mined", labels, states={16: "accepted", 17: "edited"},
                             label_map={1: "person", 2: "blue", 3: "bus", 4: "red"})
    prepared = prepare_dataset(mined, tmp_path / "prepared", val_fraction=0.25)
    output = capsys.readouterr().out
    assert f"{mined}: 1 unlabelled images left out (1 mined frames nobody reviewed, with no box)" in output
    assert f"{mined / 'label_map.pbtxt'}: no image has a box of person, bus: left out of the classes trained" in output
    assert prepared.label_map == {1: "blue", 2: "red"}
    assert sum(prepared.images.values()) == 17 and sum(prepared.background.values()) == 2  # one frame in the gap


def test_a_label_map_a_user_wrote_still_refuses_an_unboxed_class(tmp_path: Path) -> None:
    photos = make_voc_dataset(tmp_path / "photos", count=8)
    (photos / "label_map.pbtxt").write_text('item { id: 1 name: "blue" }\nitem { id: 2 name: "red" }\nitem { id: 3 name: "bus" }\n')
    with pytest.raises(UserError, match="the label map names bus but no image has a box of it"):
        prepare_dataset(photos, tmp_path / "prepared")


def star_wars_photos(root: Path, names: list[str], background: list[str]) -> Path:
    """Star-wars photos with their XML; those in ``background`` annotated with no object."""
    star_wars = shared_path("datasets/star-wars")
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for name in names + background:
        shutil.copy(star_wars / "images" / f"{name}.jpg", root / "images")
        xml = (star_wars / "annotations" / f"{name}.xml").read_text()
        if name in background:
            xml = re.sub(r"<object>.*</object>", "", xml, flags=re.S)
        (root / "annotations" / f"{name}.xml").write_text(xml)
    return root


def test_eval_counts_false_alarms_on_background_images(tmp_path: Path, capsys) -> None:
    from livedroid.training.evaluate import evaluate_model

    photos = star_wars_photos(tmp_path / "photos", ["BB-8_1", "R2-D2_1"], background=["BB-8_10", "R2-D2_10"])
    result = evaluate_model(REPO / "models" / "star-wars", photos, tmp_path / "eval", match_label_names=True)
    mistakes = result.metrics["mistakes"]
    assert result.metrics["images"] == 4 and mistakes["background_images"] == 2
    assert mistakes["background_images_with_false_alarms"] == 2 and sum(mistakes["false_alarms"].values()) >= 2
    assert re.search(r"images with no object to find \(background\): 2, 2 with a false alarm \([2-9]\d* boxes\)", capsys.readouterr().out)
    assert sum(mistakes["background_false_alarms"].values()) >= 2


def test_eval_with_tiles_plays_the_model_as_run_tiles_does(tmp_path: Path) -> None:
    from livedroid.training.evaluate import evaluate_model

    photos = star_wars_photos(tmp_path / "photos", ["BB-8_1", "R2-D2_1"], background=[])
    whole = evaluate_model(REPO / "models" / "star-wars", photos, tmp_path / "whole", match_label_names=True)
    tiled = evaluate_model(REPO / "models" / "star-wars", photos, tmp_path / "tiled", match_label_names=True,
                           tiles=True, tile_size=320)
    assert tiled.metrics["model"].endswith("star-wars/model_int8.tflite (tiles 320x320)"), tiled.metrics["model"]
    assert whole.metrics["model"].endswith("model_int8.tflite")
    assert whole.metrics["mAP@0.5"] > 0.5 and tiled.metrics["mAP@0.5"] > 0.5  # the whole photo is still inferred
    assert json.loads((tmp_path / "tiled" / "metrics.json").read_text())["model"] == tiled.metrics["model"]


def test_eval_of_background_images_alone_counts_the_classes_of_their_label_map(tmp_path: Path, capsys) -> None:
    from livedroid.training.evaluate import evaluate_model

    photos = star_wars_photos(tmp_path / "photos", [], background=["BB-8_10"])
    with pytest.raises(UserError, match="has no box of any class the model knows: name the classes whose false alarms count with --classes"):
        evaluate_model(REPO / "models" / "star-wars", photos, tmp_path / "eval")
    (photos / "label_map.pbtxt").write_text("item { id: 1 name: 'BB-8' }\n")
    result = evaluate_model(REPO / "models" / "star-wars", photos, tmp_path / "eval")
    assert result.metrics["mistakes"]["false_alarms"] == {"BB-8": 1}


def test_false_alarms_on_background_images_lead_the_contact_sheet() -> None:
    from livedroid.training.evaluate import sheet_order
    from livedroid.training.mistakes import ImageMistakes

    confused = ImageMistakes(named_as=[("red", "blue"), ("red", "blue")], false_alarms=["red"])
    alarm = ImageMistakes(false_alarms=["red"])
    right = ImageMistakes(named_as=[("red", "red")])
    truth = [[object(), object()], [], [object()], []]
    assert sheet_order([confused, alarm, right, ImageMistakes()], truth) == [1, 0, 2, 3]
