"""COCO box metrics (pycocotools) of detections against ground truth."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from livedroid.annotations import AnnotatedImage, Box
from livedroid.annotations.coco import coco_document
from livedroid.detections import Detections


def coco_metrics(ground_truth: list[list[Box]], detections: list[Detections], labels: dict[int, str]) -> dict:
    """mAP (IoU 0.5:0.95), mAP@0.5, mAP@0.75 and AP per class (None for a class without
    ground truth), over images given as parallel lists. Images without ground truth (background
    images) count: a detection on one is a false positive of its class."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truth = coco_document([(str(n), AnnotatedImage(str(n), str(n), boxes)) for n, boxes in enumerate(ground_truth)], labels)
    found = [  # image ids as coco_document numbers them, from 1
        {"image_id": n, "category_id": int(c), "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "score": float(s)}
        for n, result in enumerate(detections, start=1)
        for (x1, y1, x2, y2), s, c in zip(result.xyxy, result.scores, result.class_ids)
    ]
    # No detection: AP 0 for every class with objects; no object at all (background images only): no AP.
    boxed = {annotation["category_id"] for annotation in truth["annotations"]}
    empty = {"mAP": 0.0, "mAP@0.5": 0.0, "mAP@0.75": 0.0, "per_class_AP": {name: 0.0 if i in boxed else None for i, name in labels.items()}}
    if not found or not truth["annotations"]:
        return empty | {"images": len(ground_truth), "detections": len(found)}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco_truth = COCO()
        coco_truth.dataset = truth
        coco_truth.createIndex()
        evaluation = COCOeval(coco_truth, coco_truth.loadRes(found), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    # precision: [IoU threshold, recall, class, area range (0 = all), max detections (-1 = 100)]
    precision = evaluation.eval["precision"]
    per_class = {}
    for k, class_id in enumerate(evaluation.params.catIds):
        values = precision[:, :, k, 0, -1]
        per_class[labels[class_id]] = float(np.mean(values[values > -1])) if (values > -1).any() else None
    stats = evaluation.stats
    return {
        "mAP": max(float(stats[0]), 0.0),
        "mAP@0.5": max(float(stats[1]), 0.0),
        "mAP@0.75": max(float(stats[2]), 0.0),
        "per_class_AP": per_class,
        "images": len(ground_truth),
        "detections": len(found),
    }
