"""Snapshots keep each track's best crop: the crop of its highest-scoring detection, written once
the track is lost or the run ends. Every frame here paints its box a grey of its own, so the
written JPEG says which frame it came from."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from livedroid.analytics.snapshots import Snapshots
from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame

BOX = (10, 20, 50, 40)  # x1, y1, x2, y2


def grey_of(index: int) -> int:
    return 20 + 30 * index  # distinct after JPEG's rounding


def frame_with_box(index: int) -> Frame:
    image = np.zeros((64, 96, 3), np.uint8)
    x1, y1, x2, y2 = BOX
    image[y1:y2, x1:x2] = grey_of(index)
    return Frame(image=image, index=index)


def sighting(track: int, score: float) -> Detections:
    return Detections(xyxy=np.array([BOX], np.float32), scores=np.array([score], np.float32),
                      class_ids=np.array([1], np.int32), labels=["person"], tracker_id=np.array([track]))


def written_frame(path: Path) -> int:
    """The frame a snapshot was cropped from, by its grey."""
    crop = cv2.imread(str(path))
    return int(np.argmin([abs(float(crop.mean()) - grey_of(i)) for i in range(8)]))


@pytest.mark.parametrize(
    "scores, best",
    [
        ([0.6, 0.9, 0.7], 1),  # the peak in the middle
        ([0.5, 0.6, 0.95], 2),  # the last
        ([0.9, 0.9, 0.8], 0),  # a tie keeps the first
    ],
)
def test_the_written_crop_is_the_best_scoring_one(tmp_path: Path, scores: list[float], best: int) -> None:
    snapshots = Snapshots(tmp_path / "snaps")
    for index, score in enumerate(scores):
        snapshots.update(sighting(7, score), frame_with_box(index))
    snapshots.close()
    path = tmp_path / "snaps" / "track-0007-person.jpg"
    assert cv2.imread(str(path)).shape[:2] == (BOX[3] - BOX[1], BOX[2] - BOX[0])
    assert written_frame(path) == best


def test_a_lost_track_is_written_before_the_end(tmp_path: Path) -> None:
    snapshots = Snapshots(tmp_path / "snaps", lost_frames=2)
    snapshots.update(sighting(1, 0.8), frame_with_box(0))
    for index in range(1, 4):  # unseen for 3 frames: lost after the third
        snapshots.update(Detections(tracker_id=np.zeros((0,), int)), frame_with_box(index))
    assert [p.name for p in (tmp_path / "snaps").iterdir()] == ["track-0001-person.jpg"]
    assert snapshots.written == 1
    snapshots.close()
    assert snapshots.written == 1  # not written twice


def test_earlier_snapshots_are_kept_unless_overwrite(tmp_path: Path) -> None:
    (tmp_path / "snaps").mkdir()
    (tmp_path / "snaps" / "track-0001-person.jpg").write_bytes(b"earlier")
    with pytest.raises(UserError, match="already holds snapshots: use --overwrite"):
        Snapshots(tmp_path / "snaps")
    Snapshots(tmp_path / "snaps", overwrite=True)
