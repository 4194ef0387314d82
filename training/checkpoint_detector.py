"""Run a trained checkpoint on images without exporting it first (what ``eval`` measures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from livedroid.detections import Detections
from livedroid.detectors.base import Detector
from livedroid.errors import UserError
from livedroid.training.pipeline import load_pipeline


class CheckpointDetector(Detector):
    """The newest checkpoint of a ``fit`` folder, built for inference from its pipeline config."""

    backend = "checkpoint"

    def __init__(self, model_dir: Path, labels: dict[int, str]):
        from livedroid.training.compat import tf
        from object_detection.builders import model_builder

        latest = tf.train.latest_checkpoint(str(model_dir))
        if latest is None:
            raise UserError(f"{model_dir} has no checkpoint: run 'livedroid train fit' first")
        model = model_builder.build(load_pipeline(model_dir).model, is_training=False)
        tf.train.Checkpoint(model=model).restore(latest).expect_partial()
        self.checkpoint = latest
        self.labels = labels
        self.runtime = f"TensorFlow {tf.__version__}, checkpoint {Path(latest).name}"

        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def detect(image):
            images, shapes = model.preprocess(tf.cast(image, tf.float32))
            return model.postprocess(model.predict(images, shapes), shapes)

        self._detect = detect

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        """Detections in each RGB uint8 image, every score (the API keeps up to 100)."""
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> Detections:
        out = {name: value.numpy() for name, value in self._detect(image[np.newaxis]).items()}
        return Detections.from_object_detection_api(
            out["detection_boxes"][0],
            out["detection_scores"][0],
            out["detection_classes"][0],  # 0-based: the offset makes them label-map ids
            out["num_detections"][0],
            width=image.shape[1],
            height=image.shape[0],
            labels=self.labels,
        )
