"""Detections as JSON Lines: one record per processed frame, flushed as it is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from livedroid.detections import Detections
from livedroid.frames import Frame
from livedroid.sinks.base import PartialFile, Sink


class JsonLinesSink(Sink):
    """``{"frame", "timestamp", "width", "height", "detections": [...]}`` per line.

    Each line is flushed at once so that an interrupted run still has a record for every frame
    it processed.
    """

    needs_scene = False

    def __init__(self, path: str | Path, *, overwrite: bool = False, inputs: tuple[str, ...] = ()) -> None:
        self._file = PartialFile(path, overwrite=overwrite, inputs=inputs)
        self.path = self._file.path
        self._stream = None  # opened on the first record, so a run that processed nothing leaves no file

    def write(self, frame: Frame, detections: Detections, scene: np.ndarray | None) -> None:
        width, height = frame.size
        record = {
            "frame": frame.index,
            "timestamp": None if frame.timestamp is None else round(frame.timestamp, 6),
            "width": width,
            "height": height,
            "detections": detections.to_records(width, height),
        }
        if frame.name:
            record["image"] = frame.name
        if self._stream is None:
            self._stream = open(self._file.partial, "w", encoding="utf-8")
        self._stream.write(json.dumps(record) + "\n")
        self._stream.flush()

    def close(self, complete: bool = True) -> None:
        if self._stream is not None and not self._stream.closed:
            self._stream.close()
            self._file.finish(complete)
