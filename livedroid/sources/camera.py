"""Webcams (by index or device path) through OpenCV's capture backends."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction

import cv2

from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.sources.base import Source

# Timestamps of live frames are wall-clock microseconds since the first frame.
MICROSECONDS = Fraction(1, 1_000_000)


def _capture_api(device: int | str) -> int:
    """V4L2 directly for Linux devices: the default tries FFmpeg's device reader first, which
    logs on its own. Anything else (a clip, another OS) goes through OpenCV's default choice."""
    is_device = isinstance(device, int) or str(device).startswith("/dev/video")
    return cv2.CAP_V4L2 if is_device and sys.platform.startswith("linux") else cv2.CAP_ANY


@contextmanager
def _opencv_quiet() -> Iterator[None]:
    """OpenCV's own log silenced for the duration."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


class CameraSource(Source):
    """A local camera, read as fast as it delivers; frames are stamped with capture time."""

    live = True

    def __init__(self, device: int | str, width: int | None = None, height: int | None = None) -> None:
        self.description = f"camera {device}"
        with _opencv_quiet():  # its probing warnings would bury livedroid's one line
            self._capture = cv2.VideoCapture(device, _capture_api(device))
        if not self._capture.isOpened():
            raise UserError(f"cannot open {self.description}: no such camera, or it is busy")
        if width and height:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        size = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = size if all(size) else None
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else None
        self.time_base = MICROSECONDS

    def frames(self) -> Iterator[Frame]:
        start = None
        index = 0
        while True:
            ok, bgr = self._capture.read()
            if not ok:
                return
            now = time.monotonic()
            start = now if start is None else start
            yield Frame(
                image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                index=index,
                pts=round((now - start) * 1_000_000),
                time_base=self.time_base,
                captured_at=now,
            )
            index += 1

    def close(self) -> None:
        self._capture.release()
