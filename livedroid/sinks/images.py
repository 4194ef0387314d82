"""Annotated copies of image inputs: one named file, or a folder of them under their own names."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.sinks.base import PartialFile, Sink


def encode_image(scene: np.ndarray, suffix: str, where: Path) -> bytes:
    """The RGB picture in the format its file name's ``suffix`` names."""
    ok, data = cv2.imencode(suffix, cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))
    if not ok:
        raise UserError(f"cannot write image {where}: no encoder for '{suffix}'")
    return data.tobytes()


class ImageFolderSink(Sink):
    """Writes ``FOLDER/<input name>`` (or ``frame_000042.jpg`` for unnamed frames); the folder
    is made on the first image."""

    def __init__(self, folder: str | Path, *, overwrite: bool = False) -> None:
        self.folder = self.path = Path(folder)
        if self.folder.is_file():
            raise UserError(f"output {self.folder} is a file; image inputs need an output folder")
        self._overwrite = overwrite

    def write(self, frame: Frame, detections: Detections, scene: np.ndarray | None) -> None:
        path = self.folder / (frame.name or f"frame_{frame.index:06d}.jpg")
        if path.exists() and not self._overwrite:
            raise UserError(f"output {path} exists: use --overwrite to replace it")
        self.folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_image(scene, path.suffix, path))


class ImageFileSink(Sink):
    """The one annotated image of a single-image run, in the format its name says (``-o one.jpg``)."""

    def __init__(self, path: str | Path, *, overwrite: bool = False, inputs: tuple[str, ...] = ()) -> None:
        self._file = PartialFile(path, overwrite=overwrite, inputs=inputs)
        self.path = self._file.path
        encode_image(np.zeros((2, 2, 3), np.uint8), self.path.suffix, self.path)  # refuse unknown formats now
        self._written = False

    def write(self, frame: Frame, detections: Detections, scene: np.ndarray | None) -> None:
        if self._written:
            raise UserError(f"output {self.path} is one image, but the input has more: give a folder")
        self._file.partial.write_bytes(encode_image(scene, self.path.suffix, self.path))
        self._written = True

    def close(self, complete: bool = True) -> None:
        if self._file.partial.exists():
            self._file.finish(complete)
