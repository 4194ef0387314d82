"""The loops users write instead of livedroid, run by ``livedroid bench`` on the same frames,
model and interpreter, so that "is livedroid faster than what I would write?" has a measured answer.

- ``opencv_loop``: the TFLite Raspberry Pi example's loop, ``cv2.VideoCapture`` → interpreter →
  ``cv2.rectangle`` → ``cv2.VideoWriter('mp4v')`` in one thread (mp4v: no browser plays it).
- ``supervision_loop``: supervision's ``process_video`` (a reader thread and a writer thread
  around the callback, OpenCV underneath) with its ``BoxAnnotator``, as in its documentation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from livedroid.detections import Detections
from livedroid.detectors.base import Detector

#: What ``livedroid bench`` prints in place of the supervision row when it cannot run.
SUPERVISION_MISSING = "supervision is not installed (pip install 'livedroid[bench]')"


def supervision_available() -> bool:
    try:
        import supervision  # noqa: F401
    except ImportError:
        return False
    return True


def opencv_loop(clip: str, output: Path, detect: Callable[[np.ndarray], Detections], max_frames: int) -> int:
    """Frames read, inferred, boxed and written by plain OpenCV; returns the frame count."""
    capture = cv2.VideoCapture(clip)
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    count = 0
    while count < max_frames:
        ok, frame = capture.read()
        if not ok:
            break
        detections = detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        for x1, y1, x2, y2 in detections.xyxy.astype(int):
            cv2.rectangle(frame, (x1, y1), (x2, y2), (0, 255, 0), 2)
        writer.write(frame)
        count += 1
    writer.release()
    capture.release()
    return count


def supervision_loop(clip: str, output: Path, detect: Callable[[np.ndarray], Detections], max_frames: int) -> int:
    """supervision's ``process_video`` with the same detector; returns the frame count."""
    import supervision as sv

    annotator = sv.BoxAnnotator()
    count = 0

    def callback(frame: np.ndarray, _index: int) -> np.ndarray:
        nonlocal count
        found = detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        detections = sv.Detections(xyxy=found.xyxy, confidence=found.scores, class_id=found.class_ids)
        count += 1
        return annotator.annotate(frame.copy(), detections)

    sv.process_video(str(clip), str(output), callback, max_frames=max_frames)
    return count


def single_frame(detector: Detector, select: Callable[[Detections], Detections]) -> Callable[[np.ndarray], Detections]:
    """``detector`` as the one-image call the peers' loops make."""
    return lambda image: select(detector.detect([image])[0])
