"""``livedroid`` with two more backends, for tests only, registered by key as every backend is:
``python -m tests.extra_backends run … --backend failing|slow``.

- ``failing`` runs the default TFLite detector until it has seen ``FAIL_AFTER`` frames, then
  raises, as a detector with a bug would (run it with ``--workers 1``);
- ``slow`` takes ``SLOW_S`` per call, as a big model on a small board would: a live source must
  drop frames to keep up, a file must not.
"""

import sys
import time

import numpy as np

from livedroid.detections import Detections
from livedroid.detectors import BACKENDS
from livedroid.detectors.tflite import TFLiteDetector

FAIL_AFTER = 5
SLOW_S = 0.1  # 10 frames a second at most, a third of the test stream's 30


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


class SlowDetector(TFLiteDetector):
    backend = "slow"

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        time.sleep(SLOW_S)
        return super().detect(images)


# At import, not under __main__: batch's spawned workers import this module again (as __mp_main__).
TEST_BACKENDS = {"failing", "slow"}
BACKENDS["failing"] = ("tests.extra_backends", "FailingDetector", "")
BACKENDS["slow"] = ("tests.extra_backends", "SlowDetector", "")

if __name__ == "__main__":
    from livedroid.cli import main

    sys.exit(main())
