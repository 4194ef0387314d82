"""COCO mAP of livedroid's truth and detections, through pycocotools and the shared COCO writer."""

import numpy as np
import pytest

from livedroid.annotations import Box
from livedroid.detections import Detections
from livedroid.training.coco_metrics import coco_metrics
from tests.conftest import needs_module


def detections(*found: tuple[tuple[float, float, float, float], float, int]) -> Detections:
    return Detections(xyxy=np.array([box for box, _, _ in found], np.float32).reshape(-1, 4),
                      scores=np.array([score for _, score, _ in found], np.float32),
                      class_ids=np.array([class_id for _, _, class_id in found], np.int32),
                      labels=[""] * len(found))


def test_found_boxes_score_per_class_and_a_false_alarm_on_a_background_image_counts() -> None:
    needs_module("pycocotools", "pycocotools (the train extra) is not installed")
    truth = [[Box("cat", 10, 10, 50, 50)], [Box("dog", 20, 20, 60, 80)], []]
    found = [detections(((10, 10, 50, 50), 0.9, 1)), detections(((24, 20, 60, 80), 0.8, 2)), detections()]
    metrics = coco_metrics(truth, found, {1: "cat", 2: "dog", 3: "bird"})
    assert metrics["per_class_AP"]["cat"] == pytest.approx(1.0) and metrics["per_class_AP"]["bird"] is None
    assert metrics["per_class_AP"]["dog"] == pytest.approx(0.9)  # IoU 0.9: found at 0.5..0.9, missed at 0.95
    assert (metrics["images"], metrics["detections"]) == (3, 2)
    with_false_alarm = coco_metrics(truth, found[:2] + [detections(((0, 0, 30, 30), 0.95, 1))], {1: "cat", 2: "dog", 3: "bird"})
    assert with_false_alarm["per_class_AP"]["cat"] == pytest.approx(0.5)  # the false alarm outscores the hit
