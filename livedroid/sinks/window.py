"""A live preview window (OpenCV) with the measured frame rate."""

from __future__ import annotations

import os
import sys
import time

import cv2
import numpy as np

from livedroid.annotate import draw_text
from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.sinks.base import Sink


class WindowSink(Sink):
    """Shows each annotated frame; pressing q or Esc asks the pipeline to stop."""

    def __init__(self, title: str = "livedroid") -> None:
        self.title = title
        self.quit_requested = False
        self._last = time.perf_counter()
        self._fps = 0.0
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise UserError("--show needs a display, and DISPLAY is not set: for headless runs use -o and/or --jsonl")
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise UserError(
                "--show needs a display and OpenCV with GUI support (opencv-python, not -headless)"
            ) from None

    def write(self, frame: Frame, detections: Detections, scene: np.ndarray | None) -> None:
        now = time.perf_counter()
        self._fps = 0.9 * self._fps + 0.1 / max(now - self._last, 1e-6)
        self._last = now
        shown = draw_text(scene.copy(), f"{self._fps:.1f} fps")
        cv2.imshow(self.title, cv2.cvtColor(shown, cv2.COLOR_RGB2BGR))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.quit_requested = True

    def close(self, complete: bool = True) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
