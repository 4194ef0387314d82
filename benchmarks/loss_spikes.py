"""Is a training run's loss spike a data outlier? The losses of a run's checkpoint on augmented
training batches, each beside its smallest box (issue 33, item 2).

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a training run folder (pipeline.config and checkpoints)")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--out", type=Path, help="write each batch's figures here as JSON")
    args = parser.parse_args()

    from livedroid.training.compat import tf
    from livedroid.training.pipeline import load_pipeline
    from object_detection import inputs, model_lib, model_lib_v2
    from object_detection.builders import model_builder
    from object_detection.core import standard_fields as fields

    config = load_pipeline(args.run)
    input_side = config.model.ssd.image_resizer.fixed_shape_resizer.height
    model = model_builder.build(config.model, is_training=True, add_summaries=False)
    dataset = inputs.train_input(train_config=config.train_config, train_input_config=config.train_input_reader,
                                 model_config=config.model, model=model)
    checkpoint = tf.train.latest_checkpoint(args.run)
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()

    @tf.function
    def losses_of(features, labels):
        """The step's losses, and what its loss is divided by: the anchors matched to a box (this
        SSD normalises by their number), with the largest box-regression target among them."""
        labels = model_lib.unstack_batch(labels, unpad_groundtruth_tensors=True)
        losses, _ = model_lib_v2._compute_losses_and_predictions_dicts(model, features, labels, add_regularization_loss=False)
        weights = model.groundtruth_lists(fields.BoxListFields.weights) if model.groundtruth_has_field(fields.BoxListFields.weights) else None
        _, _, targets, _, match = model._assign_targets(model.groundtruth_lists(fields.BoxListFields.boxes),
                                                        model.groundtruth_lists(fields.BoxListFields.classes), None, weights)
        matched = match >= 0
        largest = tf.reduce_max(tf.concat([tf.reshape(tf.abs(tf.boolean_mask(targets, matched)), [-1]), [0.0]], 0))
        return losses, tf.reduce_sum(tf.cast(matched, tf.int32)), largest

    rows = []
    for features, labels in dataset.take(args.batches):
        losses, matched, largest = losses_of(features, labels)
        boxes, counts = labels[fields.InputDataFields.groundtruth_boxes].numpy(), labels[fields.InputDataFields.num_groundtruth_boxes].numpy()
        sides = [min(ymax - ymin, xmax - xmin) * input_side for image, n in zip(boxes, counts) for ymin, xmin, ymax, xmax in image[:n]]
        rows.append({"classification": float(losses["Loss/classification_loss"]), "localization": float(losses["Loss/localization_loss"]),
                     "boxes": len(sides), "smallest_side_px": float(min(sides)) if sides else None,
                     "matched_anchors": int(matched), "largest_box_target": float(largest)})
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
    worst = max(rows, key=lambda row: row["localization"])
    print(f"  the batch of the highest localization loss: {worst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
