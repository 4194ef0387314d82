"""The best picture of each track: the crop of its highest-scoring detection, as a JPEG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.settings import DEFAULT_TRACK_BUFFER
from livedroid.stages import Stage


class Snapshots(Stage):
    """Keeps each track's best crop in memory and writes ``FOLDER/track-0003-person.jpg`` once the
    track is lost (unseen for ``lost_frames`` frames) or the run ends."""

    def __init__(self, folder: str | Path, *, lost_frames: int = DEFAULT_TRACK_BUFFER, overwrite: bool = False) -> None:
        self.folder = self.path = Path(folder)
        if self.folder.is_file():
            raise UserError(f"--snapshots {self.folder} is a file; give a folder")
        if not overwrite and any(self.folder.glob("track-*.jpg")):
            raise UserError(f"--snapshots {self.folder} already holds snapshots: use --overwrite to replace them")
        self.lost_frames = lost_frames
        self.written = 0
        self._best: dict[int, tuple[float, str, np.ndarray]] = {}  # track -> score, label, crop
        self._last_seen: dict[int, int] = {}

    def update(self, detections: Detections, frame: Frame) -> Detections:
        for track, score, label, box in zip(detections.tracker_id.tolist(), detections.scores.tolist(),
                                            detections.labels, detections.xyxy):
            self._last_seen[track] = frame.index
            if score > self._best.get(track, (-1.0,))[0]:
                x1, y1, x2, y2 = np.round(box).astype(int).tolist()
                crop = frame.image[y1:y2, x1:x2]
                if crop.size:
                    self._best[track] = (score, label, crop.copy())
        for track in [t for t, seen in self._last_seen.items() if frame.index - seen > self.lost_frames]:
            self._write(track)
        return detections

    def _write(self, track: int) -> None:
        del self._last_seen[track]
        if track not in self._best:
            return
        _, label, crop = self._best.pop(track)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"track-{track:04d}-{label.replace('/', '_').replace(' ', '_')}.jpg"
        if not cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)):
            raise UserError(f"cannot write snapshot {path}")
        self.written += 1

    def close(self, complete: bool = True) -> None:
        for track in list(self._last_seen):
            self._write(track)

    def summary(self) -> list[str]:
        return [f"snapshots: {self.written} in {self.folder}"]
