"""A live preview window (OpenCV) with the measured frame rate."""

from __future__ import annotations

import os
import queue
import sys
import threading
import time

import cv2
import numpy as np

from livedroid.annotate import draw_text
from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.sinks.base import Sink

_QUIT_KEYS = (ord("q"), 27)  # q, Esc
_POLL_MS = 10


class WindowSink(Sink):
    """Shows the newest annotated frame; pressing q or Esc asks the pipeline to stop.

    Every call on the window (create, show, poll keys, destroy) runs on the window's own thread:
    OpenCV's Qt backend serves a window only from the thread that made it. With the window made on
    the main thread and shown from the writer's, opencv-python 5.1 drew nothing ("No such method
    GuiReceiver::showImage") and never saw q. The thread also keeps the window responsive between
    frames, and a slow display never holds up the writer: it skips to the newest frame.
    """

    def __init__(self, title: str = "livedroid") -> None:
        self.title = title
        self.quit_requested = False
        self._last = time.perf_counter()
        self._fps = 0.0
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise UserError("--show needs a display, and DISPLAY is not set: for headless runs use -o and/or --jsonl")
        self._newest: np.ndarray | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        opened: queue.Queue[bool] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._show_loop, args=(opened,), name="window", daemon=True)
        self._thread.start()
        if not opened.get():
            raise UserError("--show needs a display and OpenCV with GUI support (opencv-python, not -headless)")

    def write(self, frame: Frame, detections: Detections, scene: np.ndarray | None) -> None:
        now = time.perf_counter()
        self._fps = 0.9 * self._fps + 0.1 / max(now - self._last, 1e-6)
        self._last = now
        shown = cv2.cvtColor(draw_text(scene.copy(), f"{self._fps:.1f} fps"), cv2.COLOR_RGB2BGR)
        with self._lock:
            self._newest = shown

    def close(self, complete: bool = True) -> None:
        self._closing.set()
        self._thread.join(timeout=5)

    def _show_loop(self, opened: queue.Queue[bool]) -> None:
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error:
            opened.put(False)
            return
        opened.put(True)
        try:
            while not self._closing.is_set():
                with self._lock:
                    image, self._newest = self._newest, None
                if image is not None:
                    cv2.imshow(self.title, image)
                if cv2.waitKey(_POLL_MS) & 0xFF in _QUIT_KEYS:
                    self.quit_requested = True
        finally:
            try:
                cv2.destroyWindow(self.title)
            except cv2.error:
                pass
