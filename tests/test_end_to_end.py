"""End-to-end through the CLI's entry, in process, with a detector whose right answer is known: the
red square."""

import json
from pathlib import Path

import pytest

from livedroid.detections import box_iou
from tests.conftest import probe, read_jsonl, square_position, write_clip

SIZE, SIDE, FRAMES = 128, 48, 24


def assert_tracks_the_square(jsonl: Path) -> None:
    records = read_jsonl(jsonl)
    assert [r["frame"] for r in records] == list(range(FRAMES))
    for record in records:
        x, y = square_position(record["frame"], SIZE, SIZE, SIDE)
        boxes = [d for d in record["detections"] if d["label"] == "red-square"]
        assert boxes, f"frame {record['frame']}: nothing found"
        best = max(float(box_iou(d["box"], [x, y, x + SIDE, y + SIDE])[0]) for d in boxes)
        assert best > 0.5, f"frame {record['frame']}: {boxes} vs square at {x},{y}"


@pytest.fixture
def square_clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "square.mp4", frames=FRAMES, size=(SIZE, SIZE), side=SIDE, fps=12)


@pytest.mark.parametrize("batch", ["1", "4"])
def test_tflite_detector_follows_the_square(square_clip: Path, tiny_tflite: Path, tmp_path: Path, batch: str, livedroid_main) -> None:
    result = livedroid_main("run", str(square_clip), "-m", str(tiny_tflite), "--batch", batch,
                            "-o", "out.mp4", "--jsonl", "out.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_tracks_the_square(tmp_path / "out.jsonl")
    assert probe(tmp_path / "out.mp4")["frames"] == FRAMES


def test_savedmodel_detector_runs_batches_and_follows_the_square(
    square_clip: Path, tiny_savedmodel: Path, tmp_path: Path, livedroid_main
) -> None:
    result = livedroid_main("run", str(square_clip), "-m", str(tiny_savedmodel), "--batch", "4",
                            "--jsonl", "out.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "savedmodel" in result.stderr and "batch 4" in result.stderr
    assert_tracks_the_square(tmp_path / "out.jsonl")


def test_class_allow_list_filters_by_label(square_clip: Path, tiny_tflite: Path, tmp_path: Path, livedroid_main) -> None:
    result = livedroid_main("run", str(square_clip), "-m", str(tiny_tflite), "--classes", "red-square",
                            "--threshold", "0.99", "--jsonl", "out.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for line in (tmp_path / "out.jsonl").read_text().splitlines():
        assert all(d["score"] >= 0.99 for d in json.loads(line)["detections"])
