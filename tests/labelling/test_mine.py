"""``livedroid mine`` as a user runs it: what lands in the folder, resuming, and bad input."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import pytest

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
    assert (folder / "contact_sheet.jpg").stat().st_size > 10_000
    assert not folder.with_name(folder.name + ".partial").exists()
    return picked


def test_mining_a_clip_picks_spread_frames_with_reasons_and_resumes(tmp_path: Path, default_model: Path) -> None:
    clip = shared_path("videos/intel_one-by-one-person-detection.mp4")
    out = tmp_path / "mined"
    first = run_cli("mine", str(clip), "-m", str(default_model), "--classes", "person", "--out", str(out),
                    "--count", "5", "--max-frames", "400", "--no-progress")
    assert first.returncode == 0, first.stderr
    assert "mined 400 frames of 1 source" in first.stderr and "5 picked" in first.stderr
    picked = check_dataset(out)
    assert len(picked) == 5
    assert all(r["source"] == str(clip) for r in picked)
    times = sorted(r["timestamp"] for r in picked)
    assert min(b - a for a, b in zip(times, times[1:])) >= 1.0  # --min-gap 1 s
    assert any("near" in reason or "mirror" in reason for r in picked for reason in r["reasons"])

    again = run_cli("mine", str(clip), "-m", str(default_model), "--classes", "person", "--out", str(out),
                    "--count", "3", "--max-frames", "800", "--no-progress")
    assert again.returncode == 0, again.stderr
    resumed = check_dataset(out)
    assert len(resumed) == 8
    frames = [r["frame"] for r in resumed]
    assert len(set(frames)) == len(frames)


def test_all_pre_annotates_every_photo_and_train_reads_the_folder(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in sorted(shared_path("datasets/star-wars/images").glob("*.jpg"))[::20]:
        shutil.copy(path, photos / path.name)
    out = tmp_path / "assist"
    result = run_cli("mine", str(photos), "-m", str(STAR_WARS_MODEL), "--out", str(out), "--all", "--no-progress")
    assert result.returncode == 0, result.stderr
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
        (_count_zero, "--count 0"),
        (_empty, "no images"),
        (_inside, "inside the source folder"),
        (_foreign_label_map, "R2-D2, which the model does not know"),
        (_out_is_a_file, "is a file"),
    ],
)
def test_bad_input_gets_one_line_and_leaves_no_dataset(tmp_path: Path, default_model: Path, make, words: str) -> None:
    argv = make(tmp_path)
    out = Path(argv[argv.index("--out") + 1])
    before = sorted(p.name for p in out.iterdir()) if out.is_dir() else None
    result = run_cli("mine", *argv, "-m", str(default_model), "--no-progress")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livedroid: error:") and words in lines[0], result.stderr
    assert (sorted(p.name for p in out.iterdir()) if out.is_dir() else None) == before
    assert not out.with_name(out.name + ".partial").exists()
