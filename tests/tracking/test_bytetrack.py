"""ByteTracker on synthetic detections whose true trajectories are known: exact ids per frame."""

from __future__ import annotations

import numpy as np
import pytest

from livedroid.detections import Detections
from livedroid.frames import Frame
from livedroid.tracking import ByteTracker
from livedroid.tracking.bytetrack import greedy_match

IMAGE = np.zeros((480, 640, 3), np.uint8)
SIDE = 40


def objects(*placed: tuple[float, float, float]) -> Detections:
    """Detections of class 1 from (x, y, score) top-left corners of SIDE-pixel boxes."""
    xyxy = np.array([[x, y, x + SIDE, y + SIDE] for x, y, _ in placed], np.float32).reshape(-1, 4)
    return Detections(xyxy, np.array([s for *_, s in placed], np.float32), np.ones(len(placed), np.int32), ["thing"] * len(placed))


def run(frames: list[tuple[int, Detections]], **settings) -> list[dict[int, tuple[float, float]]]:
    """Per frame: track id -> top-left corner of its box."""
    tracker = ByteTracker(**settings)
    seen = []
    for index, detections in frames:
        out = tracker.update(detections, Frame(IMAGE, index))
        seen.append({int(t): (float(b[0]), float(b[1])) for t, b in zip(out.tracker_id, out.xyxy)})
    return seen


def walk(start: tuple[float, float], step: tuple[float, float], frames: range, score: float = 0.9):
    return [(start[0] + step[0] * i, start[1] + step[1] * i, score) for i in frames]


def test_two_objects_crossing_each_other_keep_their_ids() -> None:
    # A goes right, B goes left on the same row: their boxes overlap fully mid-way.
    a, b = walk((100, 200), (10, 0), range(40)), walk((490, 200), (-10, 0), range(40))
    seen = run([(i, objects(a[i], b[i])) for i in range(40)])
    assert seen[0] == {}  # a track needs two sightings
    for i in range(1, 40):
        assert seen[i] == {1: a[i][:2], 2: b[i][:2]}, f"frame {i}"


@pytest.mark.parametrize(
    "name, scores, expected_ids",
    [
        ("steady", [0.9] * 10, {1}),
        ("one-frame flicker", [0.6] + [None] * 9, set()),
        ("median below threshold", [0.55, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3], set()),
        ("weak middle keeps the track", [0.9, 0.9, 0.3, 0.3, 0.3, 0.9, 0.9, 0.9, 0.9, 0.9], {1}),
        ("gap within the buffer", [0.9] * 3 + [None] * 5 + [0.9] * 2, {1}),
    ],
)
def test_score_filter_and_gaps(name: str, scores: list[float | None], expected_ids: set[int]) -> None:
    frames = [(i, objects((100 + 5 * i, 100, s)) if s else objects()) for i, s in enumerate(scores)]
    seen = run(frames)
    assert set().union(*seen) == expected_ids, name


def test_weak_detections_do_not_start_tracks_but_continue_them() -> None:
    seen = run([(i, objects((100 + 5 * i, 100, 0.9 if i < 2 else 0.3))) for i in range(6)])
    assert [list(s) for s in seen] == [[], [1], [1], [1], [1], [1]]
    assert run([(i, objects((100, 100, 0.3))) for i in range(6)]) == [{}] * 6


@pytest.mark.parametrize("indices", [[0, 1, 2, 3, 11, 12, 20, 21, 22, 30], list(range(0, 60, 3))])
def test_ids_survive_skipped_frames(indices: list[int]) -> None:
    # Frames the motion gate or a stride skip never reach the tracker: it predicts over the gap.
    # A gap of 8 frames moves the boxes by their own width: only the prediction still overlaps.
    a, b = walk((50, 100), (5, 0), indices), walk((500, 300), (-5, -1), indices)
    seen = run([(index, objects(a[i], b[i])) for i, index in enumerate(indices)])
    assert seen[1:] == [{1: a[i][:2], 2: b[i][:2]} for i in range(1, len(indices))]


@pytest.mark.parametrize("absent, expected", [(10, [1, 1]), (40, [1, 2])])
def test_lost_track_returns_within_the_buffer_only(absent: int, expected: list[int]) -> None:
    frames = [(i, objects((200, 200, 0.9))) for i in range(5)]
    frames += [(i, objects((200, 200, 0.9))) for i in range(5 + absent, 10 + absent)]
    seen = run(frames, lost_frames=30)
    assert [min(seen[3]), min(seen[-1])] == expected


def test_classes_are_never_mixed() -> None:
    tracker = ByteTracker()
    box = np.array([[10, 10, 60, 60]], np.float32)
    for index, class_id in enumerate([1, 1, 2, 2]):
        out = tracker.update(Detections(box, np.array([0.9], np.float32), np.array([class_id], np.int32), ["x"]), Frame(IMAGE, index))
    assert out.tracker_id.tolist() == [2]


def test_greedy_match_takes_the_best_pairs_first() -> None:
    iou = np.array([[0.9, 0.8], [0.85, 0.1], [0.0, 0.05]])
    rows, columns = greedy_match(iou, 0.2)
    assert sorted(zip(rows.tolist(), columns.tolist())) == [(0, 0)]  # (1, 0) lost to (0, 0); (0, 1) row used
    rows, columns = greedy_match(np.array([[0.3, 0.9], [0.8, 0.2]]), 0.2)
    assert sorted(zip(rows.tolist(), columns.tolist())) == [(0, 1), (1, 0)]
