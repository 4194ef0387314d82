"""``livedroid run`` with tracking, zones, lines, events and snapshots, checked against known paths.

Synthetic clips use the tiny red-square detector (tests/tiny_detector.py): two squares cross a
vertical line in opposite directions, one leaves a zone and one enters it. The real clip is
counted by eye.
"""

from __future__ import annotations

import signal
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import probe, read_jsonl, shared_path, start_cli_until, write_clip
from tests.tiny_detector import red_square_image

# Squares of an anchor's size on the anchors' 12-pixel grid, where the tiny detector finds them best.
SIZE, SIDE, FRAMES, STEP = 192, 72, 10, 12  # 10 fps clip
TOP_Y, BOTTOM_Y, START_X = 18, 102, 6

# The tiny detector also finds parts of squares at the picture's edges and between the two squares,
# scoring at most 0.85 (its true boxes score 0.97): only the true ones start tracks.
CONFIDENT = ("--threshold", "0.9")


def square_boxes(index: int) -> dict[str, tuple[int, int, int, int]]:
    """Where the two squares are in frame ``index``: top goes right, bottom goes left."""
    top_x, bottom_x = START_X + STEP * index, SIZE - SIDE - START_X - STEP * index
    return {"top": (top_x, TOP_Y, top_x + SIDE, TOP_Y + SIDE), "bottom": (bottom_x, BOTTOM_Y, bottom_x + SIDE, BOTTOM_Y + SIDE)}


def two_squares(index: int) -> np.ndarray:
    image = red_square_image((SIZE, SIZE), square_boxes(index)["top"])
    x1, y1, x2, y2 = square_boxes(index)["bottom"]
    image[y1:y2, x1:x2] = (255, 0, 0)
    return image


@pytest.fixture
def crossing_clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "crossing.mp4", frames=FRAMES, size=(SIZE, SIZE), fps=10, draw=two_squares)


def test_two_squares_tracked_counted_and_logged(crossing_clip: Path, tiny_tflite: Path, tmp_path: Path, livedroid_main) -> None:
    # Line from top to bottom at x 96: looking down it, screen-left is its right: leftward is "in".
    result = livedroid_main("run", str(crossing_clip), "-m", str(tiny_tflite), *CONFIDENT, "--line", "middle=96,0,96,192",
                            "--zone", "left=0,0,0.5,0,0.5,1,0,1:red-square", "--events", "events.jsonl",
                            "--snapshots", "snaps", "--jsonl", "out.jsonl", "-o", "out.mp4", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for line in ("tracking: 2 tracks", "zone left: 2 entered", "line middle: 1 in, 1 out", "events: 6 in events.jsonl",
                 "snapshots: 2 in snaps"):
        assert f"livedroid: {line}" in result.stderr, result.stderr
    records = read_jsonl(tmp_path / "out.jsonl")
    assert [r["detections"] for r in records[:1]] == [[]]  # a track needs two sightings
    ids_by_row: dict[str, set[int]] = {"top": set(), "bottom": set()}
    for record in records[1:]:
        assert len(record["detections"]) == 2, record
        for detection in record["detections"]:
            row = "top" if detection["box"][1] < SIZE / 2 else "bottom"
            ids_by_row[row].add(detection["track_id"])
    assert sorted(ids_by_row["top"] | ids_by_row["bottom"]) == [1, 2]
    assert len(ids_by_row["top"]) == len(ids_by_row["bottom"]) == 1  # one id each, all along
    top, bottom = ids_by_row["top"].pop(), ids_by_row["bottom"].pop()
    events = [(e["event"], e["track_id"], e.get("zone") or e.get("line"), e.get("direction"), e.get("cause"))
              for e in read_jsonl(tmp_path / "events.jsonl")]
    assert sorted(events, key=str) == sorted([
        ("enter", top, "left", None, None),  # first seen inside
        ("exit", top, "left", None, "left"),
        ("cross", top, "middle", "out", None),
        ("cross", bottom, "middle", "in", None),
        ("enter", bottom, "left", None, None),
        ("exit", bottom, "left", None, "end"),  # still inside when the clip ends
    ], key=str)
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == [f"track-{t:04d}-red-square.jpg" for t in (1, 2)]
    for snapshot in (tmp_path / "snaps").iterdir():  # each the crop of a square (which crop: tests/analytics/test_snapshots.py)
        crop = cv2.cvtColor(cv2.imread(str(snapshot)), cv2.COLOR_BGR2RGB)
        assert abs(crop.shape[0] - SIDE) <= 6 and abs(crop.shape[1] - SIDE) <= 6, crop.shape
        assert np.abs(crop.reshape(-1, 3).mean(axis=0) - (255, 0, 0)).max() < 40, crop.reshape(-1, 3).mean(axis=0)
    assert probe(tmp_path / "out.mp4")["frames"] == FRAMES


def test_a_square_still_inside_at_the_end_exits_with_the_run(crossing_clip: Path, tiny_tflite: Path, tmp_path: Path, livedroid_main) -> None:
    result = livedroid_main("run", str(crossing_clip), "-m", str(tiny_tflite), *CONFIDENT, "--zone", "all=0,0,1,0,1,1,0,1",
                            "--events", "events.jsonl", "--jsonl", "out.jsonl", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    events = read_jsonl(tmp_path / "events.jsonl")
    assert [(e["event"], e.get("cause")) for e in events] == [("enter", None)] * 2 + [("exit", "end")] * 2
    assert all(e["dwell_s"] == pytest.approx((FRAMES - 2) / 10) for e in events[2:])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--zone", "door=0,0,10,10"], "--zone door: a zone needs at least 3 points (x,y pairs), got 2"),
        (["--line", "gate=5,5,5,5"], "--line gate: the line has zero length (both ends at 5,5)"),
        (["--zone", "door=0,0,500,0,500,50"], "--zone door: point 500,0 is outside the 192x192 frame"),
        (["--line", "gate=0,0,1,1:wookiee"], "--line gate: class wookiee not in the model's labels"),
        (["--analytics", "missing.yaml"], "analytics file not found: missing.yaml"),
        (["--events", "e.jsonl"], "--events records zone and line events: add --zone, --line or --analytics"),
    ],
)
def test_bad_zones_fail_before_any_frame(crossing_clip: Path, tiny_tflite: Path, tmp_path: Path, args: list[str], message: str, livedroid_main) -> None:
    result = livedroid_main("run", str(crossing_clip), "-m", str(tiny_tflite), *args, "-o", "out.mp4", "--jsonl", "out.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("livedroid: error:")]
    assert errors == [f"livedroid: error: {message}"], result.stderr
    assert not list(tmp_path.glob("out*")) and not (tmp_path / "e.jsonl.partial").exists()  # nothing was read or written


def test_events_are_complete_after_ctrl_c(tmp_path: Path, tiny_tflite: Path) -> None:
    clip = write_clip(tmp_path / "long.mp4", frames=900, size=(SIZE, SIZE), fps=30,
                      draw=lambda i: two_squares(i % FRAMES))
    process = start_cli_until("run", str(clip), "-m", str(tiny_tflite), *CONFIDENT, "--zone", "all=0,0,1,0,1,1,0,1",
                              "--events", "events.jsonl", "--no-progress", "-o", "out.mp4",
                              cwd=tmp_path, grows=tmp_path / "events.jsonl.partial", min_bytes=300)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    events = read_jsonl(tmp_path / "events.jsonl")
    enters = [e["track_id"] for e in events if e["event"] == "enter"]
    exits = [e["track_id"] for e in events if e["event"] == "exit"]
    assert enters and sorted(enters) == sorted(exits)  # every enter has its exit


# The clip shows six people, one after the other, each once (counted by eye on frames every 2 s).
# Frames between the visits, where nobody is in view: 200, 470, 710, 900, 1210.
PEOPLE = 6
VISIT_BOUNDARIES = [0, 200, 470, 710, 900, 1210, 10_000]


def test_real_clip_one_track_per_person(tmp_path: Path, livedroid_main) -> None:
    clip = shared_path("videos/intel_one-by-one-person-detection.mp4")
    result = livedroid_main("run", str(clip), "--track", "--classes", "person", "--jsonl", "out.jsonl", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    spans: dict[int, list[int]] = {}
    for record in read_jsonl(tmp_path / "out.jsonl"):
        for detection in record["detections"]:
            spans.setdefault(detection["track_id"], []).append(record["frame"])
    visits = {track: np.searchsorted(VISIT_BOUNDARIES, [min(frames), max(frames)], side="right") for track, frames in spans.items()}
    assert all(first == last for first, last in visits.values()), f"a track spans two visits: {visits}"
    assert sorted(int(first) for first, _ in visits.values()) == list(range(1, PEOPLE + 1)), f"tracks per visit: {visits}"
    assert f"livedroid: tracking: {PEOPLE} tracks" in result.stderr
