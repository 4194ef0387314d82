"""``MODEL_CARD.md`` for a model folder ``livedroid train`` wrote: what it detects, what it was
trained on and how, and how well the deployed file did on photos it never trained on — the page a
user reads before trusting the model, and the start of a shipped model's card."""

from __future__ import annotations

import shlex
from pathlib import Path

from livedroid.training.dataset.prepare import PreparedDataset
from livedroid.training.mistakes import MISSED

CARD_FILE = "MODEL_CARD.md"


def write_model_card(
    out_dir: Path, dataset: PreparedDataset, config, metrics: dict, model_file: Path, minutes: float, command: list[str]
) -> Path:
    """Write ``out_dir/MODEL_CARD.md`` from the run's dataset, pipeline config and eval metrics."""
    names = list(dataset.label_map.values())
    train = config.train_config
    architecture = config.model.WhichOneof("model")
    feature_extractor = getattr(config.model, architecture).feature_extractor.type
    start = train.fine_tune_checkpoint or "random weights"
    lines = [
        f"# {out_dir.name}: {', '.join(names)}",
        "",
        f"`{model_file.name}` detects **{'**, **'.join(names)}**: `livedroid run VIDEO -m {out_dir}`.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | {architecture.upper()}, `{feature_extractor}` |",
        f"| classes | {', '.join(f'{i} `{n}`' for i, n in dataset.label_map.items())} (`label_map.pbtxt`, also packed in the file) |",
        f"| file | `{model_file.name}`, {model_file.stat().st_size:,} bytes |",
        f"| training data | {dataset.images['train']} photos, validation {dataset.images['val']} (never trained on) |",
        f"| start point | `{start}` |",
        f"| training | {train.num_steps} steps of {train.batch_size} images; {minutes:.0f} minutes for the whole command |",
        "",
        f"## On the {metrics['images']} validation photos (the deployed file, through livedroid's runtime)",
        "",
        f"COCO mAP (IoU 0.50:0.95) **{metrics['mAP']:.3f}**, mAP@0.5 **{metrics['mAP@0.5']:.3f}**, mAP@0.75 {metrics['mAP@0.75']:.3f}; "
        + ", ".join(f"AP {n} {ap:.3f}" for n, ap in metrics["per_class_AP"].items() if ap is not None)
        + ".",
        "",
    ]
    lines += mistakes_table(metrics["mistakes"])
    lines += [
        "",
        "![mistakes first](eval/contact_sheet.png)",
        "",
        "`eval/contact_sheet.png`: validation photos, mistakes first (green: annotated, red: found). "
        "`eval/loss_curve.png`: the training losses. `eval/metrics.json`: every figure above.",
        "",
        "## How it was made",
        "",
        "```",
        shlex.join(command),
        "```",
        "",
    ]
    path = out_dir / CARD_FILE
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def mistakes_table(mistakes: dict) -> list[str]:
    """The confusion table and counts of a metrics.json ``mistakes`` entry, as Markdown lines."""
    columns = list(next(iter(mistakes["confusion"].values())).keys())
    lines = [
        f"At the default threshold ({mistakes['min_score']:g}), each annotated object was:",
        "",
        "| annotated \\ found as | " + " | ".join(c if c != MISSED else "missed" for c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    lines += [f"| {row} | " + " | ".join(str(counts[c]) for c in columns) + " |" for row, counts in mistakes["confusion"].items()]
    false_alarms = ", ".join(f"{n} {label}" for label, n in mistakes["false_alarms"].items()) or "none"
    lines += [
        "",
        f"Photos with every object named right: **{mistakes['images_objects_right']}/{mistakes['images']}** "
        f"(and no extra box: {mistakes['clean_images']}/{mistakes['images']}); objects boxed twice: "
        f"{mistakes['duplicated_objects']}; false alarms (a box on no annotated object): {false_alarms}.",
    ]
    return lines
