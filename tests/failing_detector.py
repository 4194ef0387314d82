"""``livedroid`` with one more backend, for tests only: ``python -m tests.failing_detector run …
--backend failing --workers 1`` runs the default TFLite detector until it has seen ``FAIL_AFTER``
frames, then raises, as a detector with a bug would. Registered by key, as every backend is."""

import sys

import numpy as np

from livedroid.detections import Detections
from livedroid.detectors import BACKENDS
from livedroid.detectors.tflite import TFLiteDetector

FAIL_AFTER = 5


class FailingDetector(TFLiteDetector):
    backend = "failing"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen = 0

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        self.seen += len(images)
        if self.seen > FAIL_AFTER:
            raise RuntimeError(f"injected failure after {FAIL_AFTER} frames")
        return super().detect(images)


# At import, not under __main__: batch's spawned workers import this module again (as __mp_main__).
BACKENDS["failing"] = ("tests.failing_detector", "FailingDetector", "")

if __name__ == "__main__":
    from livedroid.cli import main

    sys.exit(main())
