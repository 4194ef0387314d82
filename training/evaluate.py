"""``livedroid train eval``: COCO metrics of the newest checkpoint on the validation split,
printed and saved as JSON, with a contact sheet and the loss curve."""

from __future__ import annotations

import glob
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from livedroid.errors import UserError
from livedroid.labels import load_labels
from livedroid.training.checkpoint_detector import CheckpointDetector
from livedroid.training.coco_metrics import coco_metrics
from livedroid.training.dataset.tfrecords import read_records
from livedroid.training.fit import LOSS_TABLE, TRAIN_LOG_DIR
from livedroid.training.pipeline import load_pipeline
from livedroid.training.plots import contact_sheet, loss_curve

EVAL_DIR = "eval"
SHEET_IMAGES = 16


@dataclass
class EvalResult:
    metrics: dict
    metrics_path: Path
    contact_sheet: Path
    loss_curve: Path | None


def evaluate(model_dir: Path, out_dir: Path | None = None, *, min_score: float = 0.5) -> EvalResult:
    """Evaluate on the pipeline's eval input (the validation split ``prepare`` wrote)."""
    model_dir = Path(model_dir)
    out_dir = Path(out_dir or model_dir / EVAL_DIR)
    config = load_pipeline(model_dir)
    reader = config.eval_input_reader[0]
    records = sorted(Path(p) for pattern in reader.tf_record_input_reader.input_path for p in glob.glob(pattern))
    if not records:
        raise UserError(f"no validation records match {list(reader.tf_record_input_reader.input_path)}")
    labels = load_labels(reader.label_map_path)
    samples = read_records(records)
    if not samples:
        raise UserError(f"the validation split is empty ({records[0].parent}): prepare with --val-fraction above 0")

    detector = CheckpointDetector(model_dir, labels)
    images = [np.asarray(Image.open(io.BytesIO(s.image_bytes)).convert("RGB")) for s in samples]
    detections = [detector.detect([image])[0] for image in tqdm(images, desc="evaluating", unit="img")]
    truth = [s.boxes for s in samples]
    metrics = coco_metrics(truth, detections, labels) | {"checkpoint": Path(detector.checkpoint).name}

    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    shown = np.linspace(0, len(images) - 1, min(SHEET_IMAGES, len(images))).round().astype(int)  # spread over classes
    sheet = contact_sheet(
        [images[i] for i in shown], [truth[i] for i in shown], [detections[i] for i in shown], out_dir / "contact_sheet.png", min_score=min_score
    )
    curve = loss_curve(model_dir / TRAIN_LOG_DIR / LOSS_TABLE, out_dir / "loss_curve.png")
    print_metrics(metrics)
    print(f"saved {metrics_path}, {sheet}" + (f", {curve}" if curve else ""))
    return EvalResult(metrics, metrics_path, sheet, curve)


def print_metrics(metrics: dict) -> None:
    print(f"\n{metrics['checkpoint']} on {metrics['images']} validation images:")
    print(f"  mAP (IoU 0.50:0.95) {metrics['mAP']:.3f}   mAP@0.5 {metrics['mAP@0.5']:.3f}   mAP@0.75 {metrics['mAP@0.75']:.3f}")
    width = max(len(name) for name in metrics["per_class_AP"])
    for name, ap in metrics["per_class_AP"].items():
        print(f"  {name:<{width}}  AP {ap:.3f}" if ap is not None else f"  {name:<{width}}  no validation boxes")
