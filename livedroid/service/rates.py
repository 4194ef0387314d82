"""Rates over a sliding window, for the live figures (camera fps, detections per second)."""

from __future__ import annotations

import threading
import time
from collections import deque


class RateMeter:
    """Ticks per second over the last ``window`` seconds (less while younger than that)."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._times: deque[float] = deque()
        self._born = time.monotonic()
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            self._times.append(time.monotonic())
            self._forget(self._times[-1])

    def rate(self) -> float:
        now = time.monotonic()
        with self._lock:
            self._forget(now)
            return len(self._times) / max(min(self.window, now - self._born), 1e-3)

    def _forget(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
