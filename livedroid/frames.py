"""The frame type that sources produce and every later stage reads."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass
class Frame:
    """One decoded picture, RGB uint8 of shape (H, W, 3), with where it sits in its source.

    ``pts``/``time_base`` are the source's own timestamp (kept so the output video keeps the
    input's timing); ``captured_at`` is the ``time.monotonic()`` at which the frame was read,
    used to measure latency on live sources.
    """

    image: np.ndarray
    index: int
    pts: int | None = None
    time_base: Fraction | None = None
    captured_at: float = 0.0
    name: str | None = None  # file name for image sources

    @property
    def timestamp(self) -> float | None:
        """Presentation time in seconds, or None when the source gives none."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.image.shape[1], self.image.shape[0]
