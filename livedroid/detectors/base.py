"""The backend interface every detector implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from livedroid.detections import Detections


class Detector(ABC):
    """Turns RGB uint8 images into ``Detections`` in pixel coordinates of each image.

    ``max_batch`` is how many images one ``detect`` call runs through the model at once; the
    pipeline never hands over more.
    """

    #: Registry key of the backend, e.g. "tflite".
    backend: str = ""
    #: What runs the model (interpreter or device), for the start-up log line.
    runtime: str = ""
    max_batch: int = 1
    labels: dict[int, str]

    @abstractmethod
    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        """One ``Detections`` per image, in order."""


def same_size_runs(images: list[np.ndarray], limit: int) -> list[list[np.ndarray]]:
    """Split into consecutive groups of one shape, at most ``limit`` long (a batch is one tensor)."""
    groups: list[list[np.ndarray]] = []
    for image in images:
        if groups and len(groups[-1]) < limit and groups[-1][0].shape == image.shape:
            groups[-1].append(image)
        else:
            groups.append([image])
    return groups
