"""TensorFlow SavedModels exported by the Object Detection API (``serving_default`` signature,
uint8 ``input_tensor``, ``detection_*`` outputs), on the GPU when TensorFlow sees one."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402 - the log level must be set first

from livedroid.detections import Detections  # noqa: E402
from livedroid.detectors.base import Detector, same_size_runs  # noqa: E402
from livedroid.errors import UserError  # noqa: E402
from livedroid.labels import find_labels  # noqa: E402

log = logging.getLogger(__name__)

_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


class SavedModelDetector(Detector):
    """Runs a batch of same-sized frames in one call when the signature's batch dimension is free."""

    backend = "savedmodel"

    def __init__(
        self,
        model: Path,
        *,
        labels: str | Path | None = None,
        threads: int | None = None,
        batch: int = 1,
    ) -> None:
        folder = model / "saved_model" if (model / "saved_model" / "saved_model.pb").is_file() else model
        if threads:
            _set_threads_once(threads)
        try:
            loaded = tf.saved_model.load(str(folder))
        except (OSError, ValueError, tf.errors.OpError) as error:
            raise UserError(f"{model}: cannot load SavedModel ({str(error).splitlines()[0]})") from None
        signature = loaded.signatures.get("serving_default")
        if signature is None:
            raise UserError(f"{model}: SavedModel has no 'serving_default' signature")
        inputs = signature.structured_input_signature[1]
        if len(inputs) != 1:
            raise UserError(f"{model}: expected one image input, got {sorted(inputs)}")
        (self._input_name, spec), = inputs.items()
        missing = [name for name in _OUTPUTS if name not in signature.structured_outputs]
        if missing:
            raise UserError(f"{model}: signature lacks the Object Detection API outputs {missing}")
        self._loaded = loaded  # keeps the signature's variables alive
        self._signature = signature
        self._dtype = spec.dtype
        self.max_batch = batch if spec.shape.rank and spec.shape[0] is None else 1
        self.labels = find_labels(model, labels)
        gpus = tf.config.list_physical_devices("GPU")
        self.runtime = f"TensorFlow {tf.__version__} on " + (f"{len(gpus)} GPU(s)" if gpus else "CPU")

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        results: list[Detections] = []
        for group in same_size_runs(images, self.max_batch):
            batch = tf.constant(np.stack(group), dtype=self._dtype)
            out = self._signature(**{self._input_name: batch})
            boxes, scores, classes, counts = (out[name].numpy() for name in _OUTPUTS)
            for slot, image in enumerate(group):
                results.append(
                    Detections.from_object_detection_api(
                        boxes[slot],
                        scores[slot],
                        classes[slot],
                        counts[slot],
                        width=image.shape[1],
                        height=image.shape[0],
                        labels=self.labels,
                        class_offset=0,  # the exporter already added the label-map offset
                    )
                )
        return results


def _set_threads_once(threads: int) -> None:
    """TensorFlow takes its thread count once, before its runtime starts (later calls raise):
    the first detector sets it, and the others share that runtime."""
    if tf.config.threading.get_intra_op_parallelism_threads() == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:
        log.info("TensorFlow is already running with %s; --threads %d applies to a new process",
                 tf.config.threading.get_intra_op_parallelism_threads() or "its default threads", threads)

