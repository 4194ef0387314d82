"""The pictures ``eval`` saves: a contact sheet of validation images with ground-truth and
predicted boxes, and the training loss curve."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from livedroid.annotations import Box
from livedroid.detections import Detections

TRUTH_COLOUR = (40, 200, 60)
PREDICTION_COLOUR = (230, 40, 40)


def contact_sheet(
    images: list[np.ndarray],
    ground_truth: list[list[Box]],
    detections: list[Detections],
    path: Path,
    *,
    min_score: float = 0.5,
    captions: list[str] | None = None,
    columns: int = 4,
    tile: int = 320,
) -> Path:
    """Tile the images (each fitted in ``tile`` x ``tile``): ground truth in green, predictions
    with score >= ``min_score`` in red with their label and score, and a caption under each."""
    rows = max(1, -(-len(images) // columns))
    sheet = Image.new("RGB", (columns * tile, rows * tile), (24, 24, 24))
    for index, (image, truth, found) in enumerate(zip(images, ground_truth, detections)):
        scale = tile / max(image.shape[:2])
        picture = Image.fromarray(image).resize((max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))))
        draw = ImageDraw.Draw(picture)
        for box in truth:
            draw.rectangle([v * scale for v in (box.xmin, box.ymin, box.xmax, box.ymax)], outline=TRUTH_COLOUR, width=2)
        kept = found.select(min_score=min_score)
        for xyxy, score, label in zip(kept.xyxy, kept.scores, kept.labels):
            corners = [float(v) * scale for v in xyxy]
            draw.rectangle(corners, outline=PREDICTION_COLOUR, width=2)
            draw.text((corners[0] + 3, corners[1] + 2), f"{label} {score:.2f}", fill=PREDICTION_COLOUR)
        if captions:
            ImageDraw.Draw(picture).text((3, picture.height - 13), captions[index], fill=(255, 255, 0), stroke_width=1, stroke_fill=(0, 0, 0))
        sheet.paste(picture, ((index % columns) * tile, (index // columns) * tile))
    ImageDraw.Draw(sheet).text((4, sheet.height - 14), f"green: ground truth   red: predicted (score >= {min_score})", fill=(255, 255, 255))
    sheet.quantize(256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)  # a third of the bytes, same look
    return path


def loss_curve(loss_table: Path, path: Path) -> Path | None:
    """Plot every loss column of ``fit``'s CSV against the step; None when there is no table."""
    if not loss_table.is_file():
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    with open(loss_table, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    if not rows:
        return None
    steps = [int(row["step"]) for row in rows]
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for column in rows[0]:
        if column.endswith("_loss"):
            axes.plot(steps, [float(row[column] or "nan") for row in rows], label=column.replace("_", " "))
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title("training loss")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
