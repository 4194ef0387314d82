"""Detections as JSON Lines: one record per processed frame, flushed as it is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from livedroid.detections import Detections
from livedroid.frames import Frame
from livedroid.sinks.base import PartialFile, Sink


class JsonLinesFile:
    """A JSON Lines output: each ``write`` is one line, flushed at once, so an interrupted or
    killed run keeps every record written up to then. Written as ``NAME.partial``, renamed on
    ``close(complete=True)``; opened on first use (or :meth:`start`), so a run that never starts
    leaves no file."""

    def __init__(self, path: str | Path, *, overwrite: bool = False, inputs: tuple[str, ...] = ()) -> None:
        self._file = PartialFile(path, overwrite=overwrite, inputs=inputs)
        self.path = self._file.path
        self.count = 0
        self._stream = None
        self._closed = False

    def start(self):
        """Open the file now, so that it exists even if no line ever comes (an events log)."""
        if self._stream is None:
            self._stream = open(self._file.partial, "w", encoding="utf-8")
        return self._stream

    def write(self, record: dict) -> None:
        stream = self.start()
        stream.write(json.dumps(record) + "\n")
        stream.flush()
        self.count += 1

    def close(self, complete: bool = True) -> None:
        """Finish the file; one never started is not created (nothing ran)."""
        if not self._closed:
            self._closed = True
            if self._stream is not None:
                self._stream.close()
                self._file.finish(complete)


class JsonLinesSink(Sink):
    """``{"frame", "timestamp", "width", "height", "detections": [...]}`` per line."""

    needs_scene = False

    def __init__(self, path: str | Path, *, overwrite: bool = False, inputs: tuple[str, ...] = ()) -> None:
        self._file = JsonLinesFile(path, overwrite=overwrite, inputs=inputs)
        self.path = self._file.path

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
        self._file.write(record)

    def close(self, complete: bool = True) -> None:
        self._file.close(complete)
