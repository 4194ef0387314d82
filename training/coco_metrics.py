"""COCO box metrics (pycocotools) of detections against ground truth."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from livedroid.annotations import Box
from livedroid.detections import Detections


def coco_metrics(ground_truth: list[list[Box]], detections: list[Detections], labels: dict[int, str]) -> dict:
    """mAP (IoU 0.5:0.95), mAP@0.5, mAP@0.75 and AP per class (None for a class without
    ground truth), over images given as parallel lists. Images without ground truth (background
    images) count: a detection on one is a false positive of its class."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ids = {name: i for i, name in labels.items()}
    truth = {
        "images": [{"id": n} for n in range(len(ground_truth))],
        "categories": [{"id": i, "name": name} for i, name in labels.items()],
        "annotations": [
            {
                "id": k + 1,
                "image_id": n,
                "category_id": ids[box.label],
                "bbox": [box.xmin, box.ymin, box.xmax - box.xmin, box.ymax - box.ymin],
                "area": (box.xmax - box.xmin) * (box.ymax - box.ymin),
                "iscrowd": 0,
            }
            for k, (n, box) in enumerate((n, box) for n, boxes in enumerate(ground_truth) for box in boxes)
        ],
    }
    found = [
        {"image_id": n, "category_id": int(c), "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "score": float(s)}
        for n, result in enumerate(detections)
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
