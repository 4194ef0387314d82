"""Is a training run's loss spike a data outlier? The losses of a run's checkpoint on augmented
training batches, each beside its boxes and the anchors that carry it (issue 33, item 2).

The batches come from the run's own ``pipeline.config`` and records, through the Object Detection
API's input pipeline (zoom-out, SSD crops: the boxes a step sees). A spike that a batch causes
whatever the weights shows up here as a batch far above the median; a spike that needs the weights
of a moment in training (a high learning rate) does not.

    .venv/bin/python benchmarks/loss_spikes.py runs/person-drone/training --batches 200
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a training run folder (pipeline.config and checkpoints)")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--out", type=Path, help="write each batch's figures here as JSON")
    parser.add_argument("--large", type=float, default=32, help="a box this size or more at the input (sqrt of its area, px) is large")
    args = parser.parse_args()

    from livedroid.training.compat import tf
    from livedroid.training.pipeline import load_pipeline
    from object_detection import inputs, model_lib, model_lib_v2
    from object_detection.builders import model_builder
    from object_detection.core import standard_fields as fields

    config = load_pipeline(args.run)
    input_side = config.model.ssd.image_resizer.fixed_shape_resizer.height
    miner = config.model.ssd.loss.hard_example_miner
    model = model_builder.build(config.model, is_training=True, add_summaries=False)
    dataset = inputs.train_input(train_config=config.train_config, train_input_config=config.train_input_reader,
                                 model_config=config.model, model=model)
    checkpoint = tf.train.latest_checkpoint(args.run)
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()

    @tf.function
    def losses_of(features, labels):
        """The step's losses; each anchor's classification loss and match (the box it is assigned,
        -1 background, -2 ignored); the boxes; the box-regression targets."""
        labels = model_lib.unstack_batch(labels, unpad_groundtruth_tensors=True)
        losses, predictions = model_lib_v2._compute_losses_and_predictions_dicts(model, features, labels, add_regularization_loss=False)
        weights = model.groundtruth_lists(fields.BoxListFields.weights) if model.groundtruth_has_field(fields.BoxListFields.weights) else None
        boxes = model.groundtruth_lists(fields.BoxListFields.boxes)
        cls_targets, cls_weights, targets, _, match = model._assign_targets(boxes, model.groundtruth_lists(fields.BoxListFields.classes), None, weights)
        per_anchor = tf.reduce_sum(model._classification_loss(predictions["class_predictions_with_background"], cls_targets, weights=cls_weights), 2)
        return losses, per_anchor, match, boxes, targets

    rows = []
    for features, labels in dataset.take(args.batches):
        losses, per_anchor, match, boxes, targets = losses_of(features, labels)
        per_anchor, match, targets = per_anchor.numpy(), match.numpy(), targets.numpy()
        row = {"classification": float(losses["Loss/classification_loss"]), "localization": float(losses["Loss/localization_loss"]),
               "boxes": 0, "smallest_side_px": None, "matched_anchors": int((match >= 0).sum()),
               "largest_box_target": float(np.abs(targets[match >= 0]).max(initial=0.0)),
               "positives_loss": 0.0, "hard_negatives_loss": 0.0, "positives_loss_on_large_boxes": 0.0}
        for anchor_losses, anchor_match, image_boxes in zip(per_anchor, match, boxes):
            image_boxes = image_boxes.numpy()
            heights, widths = (np.clip(image_boxes[:, 2:] - image_boxes[:, :2], 0, None) * input_side).T
            sides = np.sqrt(heights * widths)  # a box's size: the side of a square of its area
            row["boxes"] += len(image_boxes)
            if len(image_boxes):
                row["smallest_side_px"] = float(min(np.minimum(heights, widths).min(), row["smallest_side_px"] or np.inf))
            positive = anchor_match >= 0
            # the config's hard-example miner: the hardest negatives, so many per positive, at least so many an image
            count = max(miner.min_negatives_per_image, miner.max_negatives_per_positive * int(positive.sum()))
            negatives = np.sort(anchor_losses[anchor_match == -1])[::-1][:count]
            row["positives_loss"] += float(anchor_losses[positive].sum())
            row["hard_negatives_loss"] += float(negatives.sum())
            if len(image_boxes):  # a background image has no positives
                large = positive & (sides[np.maximum(anchor_match, 0)] >= args.large)
                row["positives_loss_on_large_boxes"] += float(anchor_losses[large].sum())
        rows.append(row)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))

    print(f"{checkpoint}: {len(rows)} augmented batches")
    for term in ("classification", "localization"):
        values = sorted(row[term] for row in rows)
        median = statistics.median(values)
        print(f"  {term}: median {median:.3g}, 99th percentile {values[int(0.99 * (len(values) - 1))]:.3g}, "
              f"max {values[-1]:.3g} ({values[-1] / median:.1f}x the median)")
    sides = sorted(row["smallest_side_px"] for row in rows if row["smallest_side_px"] is not None)
    print(f"  smallest box of a batch at the {input_side} px input: min {sides[0]:.2f} px, median {statistics.median(sides):.1f} px")
    median = statistics.median(row["classification"] for row in rows)
    spiking = [row["classification"] > 4 * median for row in rows]
    groups = {"spiking (classification over 4x the median)": [r for r, s in zip(rows, spiking) if s],
              "the others": [r for r, s in zip(rows, spiking) if not s]}
    for name, group in groups.items():
        if not group:
            continue
        share = lambda part: statistics.median(r[part] / max(r["positives_loss"] + r["hard_negatives_loss"], 1e-9) for r in group)
        print(f"  {name}: {len(group)} batches; matched anchors, median {statistics.median(r['matched_anchors'] for r in group)}; "
              f"loss per positive, median {statistics.median(r['positives_loss'] / max(r['matched_anchors'], 1) for r in group):.2f}; "
              f"share of the loss on positives {share('positives_loss'):.2f}, on positives of boxes of {args.large} px or more "
              f"{share('positives_loss_on_large_boxes'):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
