"""``livedroid train eval``: COCO metrics on the validation split, and the mistakes at the
deployment threshold (confusions, misses, duplicates, false alarms), printed and saved as JSON,
with a contact sheet that shows the mistakes first and the loss curve."""

from __future__ import annotations

import glob
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from livedroid.annotations import AnnotatedImage
from livedroid.errors import UserError
from livedroid.labels import load_labels
from livedroid.training.checkpoint_detector import CheckpointDetector
from livedroid.training.coco_metrics import coco_metrics
from livedroid.training.dataset.tfrecords import read_records
from livedroid.training.fit import LOSS_TABLE, TRAIN_LOG_DIR
from livedroid.training.mistakes import format_report, mistake_report
from livedroid.training.pipeline import load_pipeline
from livedroid.training.plots import contact_sheet, loss_curve
from livedroid.wording import plural

EVAL_DIR = "eval"
SHEET_IMAGES = 16


@dataclass
class EvalResult:
    metrics: dict
    metrics_path: Path
    contact_sheet: Path
    loss_curve: Path | None


def evaluate(
    model_dir: Path,
    out_dir: Path | None = None,
    *,
    model: Path | None = None,
    min_score: float = 0.5,
    data: Path | None = None,
    images_dir: Path | None = None,
) -> EvalResult:
    """``livedroid train eval``: the newest checkpoint of ``model_dir``, or ``model`` (an exported
    .tflite or SavedModel, run by livedroid's own backends exactly as ``livedroid run`` will), on
    the validation split ``prepare`` wrote, or on the annotated photos ``data`` (a held-out test set)."""
    model_dir = Path(model_dir)
    reader = load_pipeline(model_dir).eval_input_reader[0]
    labels = load_labels(reader.label_map_path)
    samples = _annotated_set(data, images_dir, labels) if data else _validation_split(reader)
    if model is None:
        detector = CheckpointDetector(model_dir, labels)
        evaluated = Path(detector.checkpoint).name
    else:
        from livedroid.detectors import load_detector

        detector, evaluated = load_detector(model), str(model)
    return evaluate_detector(
        detector, evaluated, samples, labels, Path(out_dir or model_dir / EVAL_DIR), min_score,
        evaluated_on=str(data) if data else "validation", loss_table=model_dir / TRAIN_LOG_DIR / LOSS_TABLE,
    )


def evaluate_model(
    model: Path,
    data: Path,
    out_dir: Path,
    *,
    labels: Path | None = None,
    min_score: float = 0.5,
    images_dir: Path | None = None,
    aliases: dict[str, str] | None = None,
    match_label_names: bool = False,
    classes: set[str] | None = None,
    tiles: bool = False,
    tile_size: int | None = None,
) -> EvalResult:
    """``livedroid eval``: any model ``livedroid run`` plays, on any dataset ``prepare`` reads,
    with no training folder. The dataset's class names must be the model's (or be mapped with
    ``aliases``/``match_label_names``); metrics cover the classes the dataset has boxes of, or
    names in its ``label_map.pbtxt`` (a detection of them on a background image is a false alarm).
    ``tiles``: the model as ``run --tiles`` plays it (the whole photo and its tiles, merged)."""
    from livedroid.detectors import load_detector
    from livedroid.models import resolve_model

    model_path = resolve_model(str(model))
    detector = load_detector(model_path, labels=labels)
    if tiles:
        from livedroid.regions import TiledDetector

        detector = TiledDetector(detector, (tile_size, tile_size) if tile_size else None)
    if classes:
        unknown = sorted(classes - set(detector.labels.values()))
        if unknown:
            raise UserError(f"--classes: {', '.join(unknown)} not among the model's labels ({', '.join(list(detector.labels.values())[:8])} …)")
    samples = _annotated_set(data, images_dir, detector.labels, aliases or {}, match_label_names)
    if classes:
        for sample in samples:
            sample.boxes = [box for box in sample.boxes if box.label in classes]
    present = classes or {box.label for sample in samples for box in sample.boxes} | _label_map_classes(data, detector.labels)
    if not present:
        raise UserError(f"{data} has no box of any class the model knows: name the classes whose false alarms count with --classes")
    scored = {i: name for i, name in detector.labels.items() if name in present}
    evaluated = f"{model_path} (tiles {detector.tile[0]}x{detector.tile[1]})" if tiles else str(model_path)
    return evaluate_detector(detector, evaluated, samples, scored, Path(out_dir), min_score, evaluated_on=str(data))


def evaluate_detector(
    detector,
    evaluated: str,
    samples: list,
    labels: dict[int, str],
    out_dir: Path,
    min_score: float,
    *,
    evaluated_on: str,
    loss_table: Path | None = None,
) -> EvalResult:
    """The one evaluation both commands share: COCO metrics on ``labels``' classes, the mistakes
    at ``min_score``, ``metrics.json``, the contact sheet (mistakes first) and the loss curve."""
    names = set(labels.values())
    images = [np.asarray(Image.open(io.BytesIO(s.image_bytes)).convert("RGB")) for s in samples]
    detections = [detector.detect([image])[0] for image in tqdm(images, desc="evaluating", unit="img")]
    detections = [d.select(classes=names) for d in detections]  # other classes: not what the set measures
    truth = [s.boxes for s in samples]
    report, per_image = mistake_report(truth, detections, list(labels.values()), min_score)
    metrics = coco_metrics(truth, detections, labels) | {
        "model": evaluated,
        "evaluated_on": evaluated_on,
        "mistakes": report.as_dict(),
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    order = sheet_order(per_image, truth)
    sheet = contact_sheet(
        [images[i] for i in order],
        [truth[i] for i in order],
        [detections[i] for i in order],
        out_dir / "contact_sheet.png",
        min_score=min_score,
        captions=[f"{Path(samples[i].filename).stem}: {per_image[i].summary()}" for i in order],
    )
    curve = loss_curve(loss_table, out_dir / "loss_curve.png") if loss_table else None
    print_metrics(metrics)
    print(format_report(report))
    print(f"saved {metrics_path}, {sheet} (mistakes first)" + (f", {curve}" if curve else ""))
    return EvalResult(metrics, metrics_path, sheet, curve)


def sheet_order(per_image: list, truth: list[list]) -> list[int]:
    """The images the contact sheet shows: false alarms on background images first, then the
    other mistakes (most first), then right ones spread over the set (and so over the classes)."""
    wrong = sorted(
        (i for i in range(len(per_image)) if per_image[i].mistakes),
        key=lambda i: (bool(truth[i]), -per_image[i].mistakes, i),
    )
    right = [i for i in range(len(per_image)) if not per_image[i].mistakes]
    room = max(0, SHEET_IMAGES - len(wrong))
    return (wrong + [right[k] for k in np.linspace(0, len(right) - 1, min(room, len(right))).round().astype(int)])[:SHEET_IMAGES]


def _label_map_classes(data: Path, labels: dict[int, str]) -> set[str]:
    """The model's classes among those the dataset's own ``label_map.pbtxt`` names (none without one)."""
    folder = Path(data) if Path(data).is_dir() else Path(data).parent
    path = folder / "label_map.pbtxt"
    return set(load_labels(path).values()) & set(labels.values()) if path.is_file() else set()


def _validation_split(reader) -> list:
    records = sorted(Path(p) for pattern in reader.tf_record_input_reader.input_path for p in glob.glob(pattern))
    if not records:
        raise UserError(f"no validation records match {list(reader.tf_record_input_reader.input_path)}")
    samples = read_records(records)
    if not samples:
        raise UserError(f"the validation split is empty ({records[0].parent}): prepare with --val-fraction above 0")
    return samples


def _annotated_set(
    data: Path, images_dir: Path | None, labels: dict[int, str], aliases: dict[str, str] | None = None, loose: bool = True
) -> list[AnnotatedImage]:
    """Photos read and checked as ``prepare`` does, their class names matched to the model's."""
    from livedroid.training.dataset.class_names import apply_label_map
    from livedroid.training.dataset.prepare import read_annotations
    from livedroid.training.dataset.unlabelled import leave_out_unlabelled
    from livedroid.training.dataset.validate import validate_images

    if not Path(data).exists():
        raise UserError(f"dataset not found: {data}")
    problems: list = []
    annotated = leave_out_unlabelled(Path(data), read_annotations(Path(data), images_dir, problems))
    apply_label_map(annotated, labels, aliases or {}, loose, problems)
    checked = validate_images(annotated, problems)
    if not checked:
        raise UserError(f"{data}: no usable annotated images")
    if problems:
        print(f"{plural(len(problems), 'problem')} in {data} (left out): " + "; ".join(f"{p.where}: {p.what}" for p in problems[:3]))
    return [AnnotatedImage(c.source, c.filename, c.boxes, image_bytes=c.encoded) for c in checked]


def print_metrics(metrics: dict) -> None:
    print(f"\n{metrics['model']} on {metrics['images']} {metrics['evaluated_on']} images:")
    print(f"  mAP (IoU 0.50:0.95) {metrics['mAP']:.3f}   mAP@0.5 {metrics['mAP@0.5']:.3f}   mAP@0.75 {metrics['mAP@0.75']:.3f}")
    width = max(len(name) for name in metrics["per_class_AP"])
    for name, ap in metrics["per_class_AP"].items():
        print(f"  {name:<{width}}  AP {ap:.3f}" if ap is not None else f"  {name:<{width}}  no validation boxes")
