"""Save an SSD built outside the Object Detection API as the SavedModel its ``export_tflite_graph_tf2``
writes, so :func:`training.tflite_export.convert_saved_model_to_tflite` handles both alike.

That SavedModel takes one float image [1, H, W, 3] scaled to [-1, 1] and ends in an empty function
annotated ``experimental_implements="TFLite_Detection_PostProcess ..."``: the TFLite converter
replaces it by that op, which decodes the box encodings against the anchors, runs NMS and gives
boxes (normalized ymin, xmin, ymax, xmax), classes (0-based), scores and the count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Signature output names, which livedroid's runtime finds the outputs by (the converter lists them
# in an order of its own: count, boxes, classes, scores).
OUTPUT_NAMES = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")


@dataclass(frozen=True)
class PostprocessSettings:
    """Attributes of the ``TFLite_Detection_PostProcess`` op.

    ``num_classes`` excludes the background; ``box_scales`` are the box coder's (y, x, h, w)
    scales (10, 10, 5, 5 in the API's SSD configs). Fast NMS (one class per box) is used: the
    regular one drops classes under multi-threaded ai_edge_litert (tensorflow/tensorflow#56058).
    """

    num_classes: int
    max_detections: int = 100
    score_threshold: float = 0.3
    iou_threshold: float = 0.6
    box_scales: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)

    def implements_signature(self) -> str:
        y_scale, x_scale, h_scale, w_scale = self.box_scales
        attributes = {
            "max_detections": f"i: {self.max_detections}",
            "max_classes_per_detection": "i: 1",
            "use_regular_nms": "b: false",
            "nms_score_threshold": f"f: {self.score_threshold:f}",
            "nms_iou_threshold": f"f: {self.iou_threshold:f}",
            "y_scale": f"f: {y_scale:f}",
            "x_scale": f"f: {x_scale:f}",
            "h_scale": f"f: {h_scale:f}",
            "w_scale": f"f: {w_scale:f}",
            "num_classes": f"i: {self.num_classes}",
        }
        return " ".join(
            ['name: "TFLite_Detection_PostProcess"']
            + [f'attr {{ key: "{key}" value {{ {value} }} }}' for key, value in attributes.items()]
        )


def save_ssd_tflite_graph(
    saved_model_dir: str | Path,
    predict: Callable,
    anchors: np.ndarray,
    input_size: tuple[int, int],
    settings: PostprocessSettings,
) -> Path:
    """Write the SavedModel and return its folder.

    ``predict`` maps the [1, H, W, 3] float image to (box encodings [1, A, 4], class scores
    [1, A, num_classes + 1] after sigmoid or softmax, background first); ``anchors`` are the A
    anchors as normalized corners (ymin, xmin, ymax, xmax); ``input_size`` is (height, width).
    """
    import tensorflow as tf

    ymin, xmin, ymax, xmax = np.asarray(anchors, np.float32).T
    center_size = np.stack([(ymin + ymax) / 2, (xmin + xmax) / 2, ymax - ymin, xmax - xmin], axis=1)

    @tf.function(experimental_implements=settings.implements_signature())
    def postprocess(box_encodings, class_scores, anchors):  # noqa: ARG001 - the op's inputs
        # A placeholder body: the converter replaces the whole function by the TFLite op.
        return tuple(tf.constant(0.0, name=name) for name in OUTPUT_NAMES)

    height, width = input_size

    class SsdModule(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, name="input")])
        def detect(self, image):
            box_encodings, class_scores = predict(image)
            outputs = postprocess(
                tf.identity(box_encodings, name="box_encodings"),
                tf.identity(class_scores, name="class_predictions"),
                tf.constant(center_size, name="anchors"),
            )
            return dict(zip(OUTPUT_NAMES, outputs))

    module = SsdModule()
    tf.saved_model.save(module, str(saved_model_dir), signatures={"serving_default": module.detect})
    return Path(saved_model_dir)
