"""Annotated copies of image inputs, written into a folder under their own names."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.sinks.base import Sink


class ImageFolderSink(Sink):
    """Writes ``FOLDER/<input name>`` (or ``frame_000042.jpg`` for unnamed frames)."""

    def __init__(self, folder: str | Path, *, overwrite: bool = False) -> None:
        self.folder = self.path = Path(folder)
        if self.folder.is_file():
            raise UserError(f"output {self.folder} is a file; image inputs need an output folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._overwrite = overwrite

    def write(self, frame: Frame, detections: Detections, scene: np.ndarray | None) -> None:
        path = self.folder / (frame.name or f"frame_{frame.index:06d}.jpg")
        if path.exists() and not self._overwrite:
            raise UserError(f"output {path} exists: use --overwrite to replace it")
        if not cv2.imwrite(str(path), cv2.cvtColor(scene, cv2.COLOR_RGB2BGR)):
            raise UserError(f"cannot write image {path}")
