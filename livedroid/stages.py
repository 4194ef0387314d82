"""``Stage``: a step between selection and the sinks (tracking, zones, snapshots).

Stages run on the writer thread, one frame at a time in source order, so they may keep state
from frame to frame. The engine composes them without knowing what they do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from livedroid.detections import Detections
from livedroid.frames import Frame


class Stage(ABC):
    """``update`` each frame's detections in order, ``draw`` on the annotated picture, ``close`` once."""

    @abstractmethod
    def update(self, detections: Detections, frame: Frame) -> Detections:
        """The detections of ``frame`` as the next stage and the sinks should see them."""

    def draw(self, scene: np.ndarray) -> None:
        """Add this stage's overlay (zones, counts) to the annotated picture, in place."""

    def close(self, complete: bool = True) -> None:
        """The run ended (also after Ctrl-C): finish records. ``complete=False``: the run failed."""

    def summary(self) -> list[str]:
        """Lines for the end-of-run summary."""
        return []
