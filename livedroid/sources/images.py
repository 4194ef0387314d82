"""Single images, folders of images and glob patterns."""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.sources.base import Source

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def is_image_spec(spec: str) -> bool:
    """True for an image file, a folder, or a glob pattern."""
    path = Path(spec)
    return path.suffix.lower() in IMAGE_SUFFIXES or path.is_dir() or glob.has_magic(spec)


class ImageSource(Source):
    """Images in sorted order, each converted to RGB whatever its mode (gray, alpha, 16-bit).

    Several specs (a shell's expanded glob) are read in the order given, each expanded in turn.
    """

    def __init__(self, spec: str | list[str]) -> None:
        specs = [spec] if isinstance(spec, str) else list(spec)
        self.description = specs[0] if len(specs) == 1 else f"{len(specs)} images"
        self.paths = [path for one in specs for path in _expand(one)]
        self.frame_count = len(self.paths)

    def frames(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            try:
                image = read_rgb(path)
            except UserError as error:
                self.skipped += 1
                log.warning("%s, skipped", error)
                continue
            yield Frame(image=image, index=index, captured_at=time.monotonic(), name=path.name)


def read_rgb(path: Path) -> np.ndarray:
    """Any image OpenCV understands as RGB uint8 (gray, alpha and 16-bit converted); a file that
    cannot be read or decoded is a UserError naming it. livedroid's one way to read an image."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise UserError(f"{path}: not a readable image")
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(np.iinfo(image.dtype).max)))
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _expand(spec: str) -> list[Path]:
    path = Path(spec)
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise UserError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {spec}")
        return paths
    if glob.has_magic(spec):
        paths = sorted(Path(p) for p in glob.glob(spec) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise UserError(f"no images match {spec}")
        return paths
    if not path.is_file():
        raise UserError(f"image not found: {spec}")
    return [path]
