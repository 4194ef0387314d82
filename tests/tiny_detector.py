"""A tiny but real detector for tests: it finds a solid bright red square on a dark or gray background.

Its weights are set by hand, so it is deterministic and built in seconds. A 1x1 convolution
measures redness (R - (G + B) / 2, 2 for pure red, 0 for any gray) at 64x64; an average pool the
size of an anchor (24x24 pixels, stride 4) gives, for each of the 16x16 anchors, how much of it is
red; the class logit is high when more than 60% is. Box encodings are zero, so a detection is its
anchor: a square 24/64 of the image wide fits one to IoU 1 when aligned to the 4-pixel grid and to
IoU > 0.7 anywhere.

Two builds, both with label-map id 1 "red-square":
- :func:`build_tiny_tflite`: the Object Detection API TFLite layout, through the same
  ``livedroid.training.ssd_tflite_graph`` + ``livedroid.training.tflite_export`` path as real models;
- :func:`build_tiny_savedmodel`: the API's SavedModel export layout (``input_tensor`` uint8 of any
  batch and size; ``detection_boxes`` [N, 100, 4] …) with a ``label_map.pbtxt`` inside.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from livedroid.pixels import unit_range

LABELS = {1: "red-square"}
INPUT_SIZE = 64
GRID = 16  # anchors per side: one per 4-pixel cell
ANCHOR_PIXELS = 24
MIN_RED_SHARE = 0.6  # of an anchor's area, for its score to pass 0.5
MAX_DETECTIONS = 100
SCORE_THRESHOLD = 0.5
IOU_THRESHOLD = 0.3  # NMS keeps one of the anchors that overlap one square
RED = (255, 0, 0)


def red_square_image(
    size: tuple[int, int], box_xyxy: tuple[int, int, int, int], background: int = 60
) -> np.ndarray:
    """An RGB uint8 image of ``size`` (height, width): gray ``background``, a red square at ``box``."""
    image = np.full((*size, 3), background, np.uint8)
    x1, y1, x2, y2 = box_xyxy
    image[y1:y2, x1:x2] = RED
    return image


def anchors() -> np.ndarray:
    """The 16x16 anchors as normalized corners (ymin, xmin, ymax, xmax), row by row."""
    centers = (np.arange(GRID, dtype=np.float32) + 0.5) / GRID
    cy, cx = (grid.reshape(-1) for grid in np.meshgrid(centers, centers, indexing="ij"))
    half = ANCHOR_PIXELS / INPUT_SIZE / 2
    return np.stack([cy - half, cx - half, cy + half, cx + half], axis=1)


def predict(image):
    """(box encodings [N, 256, 4], class scores [N, 256, 2]) for a [N, 64, 64, 3] image in [-1, 1]."""
    import tensorflow as tf

    redness_kernel = tf.constant([1.0, -0.5, -0.5], shape=[1, 1, 3, 1])
    redness = tf.nn.conv2d(image, redness_kernel, strides=1, padding="VALID")
    red_share = tf.nn.avg_pool2d(redness, ANCHOR_PIXELS, strides=INPUT_SIZE // GRID, padding="SAME") / 2.0
    logits = tf.reshape(10.0 * (red_share - MIN_RED_SHARE), [-1, GRID * GRID, 1])
    class_scores = tf.concat([tf.sigmoid(-logits), tf.sigmoid(logits)], axis=2)
    box_encodings = tf.zeros([tf.shape(logits)[0], GRID * GRID, 4])
    return box_encodings, class_scores


def calibration_images(count: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Red squares of varied places and sizes on varied gray backgrounds, for int8 calibration."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        side = int(rng.integers(16, 40))
        x, y = (int(v) for v in rng.integers(0, INPUT_SIZE - side, 2))
        images.append(red_square_image((INPUT_SIZE, INPUT_SIZE), (x, y, x + side, y + side), int(rng.integers(0, 160))))
    return images


def build_tiny_tflite(path: str | Path, quantization: str = "float32") -> Path:
    """Write the tiny detector as a ``.tflite`` (float32 or full int8, labels packed) at ``path``."""
    import tempfile

    from livedroid.training.ssd_tflite_graph import PostprocessSettings, save_ssd_tflite_graph
    from livedroid.training.tflite_export import convert_saved_model_to_tflite

    settings = PostprocessSettings(
        num_classes=len(LABELS),
        max_detections=MAX_DETECTIONS,
        score_threshold=SCORE_THRESHOLD,
        iou_threshold=IOU_THRESHOLD,
    )
    with tempfile.TemporaryDirectory() as folder:
        saved_model = save_ssd_tflite_graph(folder, predict, anchors(), (INPUT_SIZE, INPUT_SIZE), settings)
        return convert_saved_model_to_tflite(
            saved_model,
            path,
            quantization=quantization,
            representative_images=calibration_images() if quantization == "int8" else None,
            labels=LABELS,
        )


def build_tiny_savedmodel(path: str | Path) -> Path:
    """Write the tiny detector as an Object Detection API export SavedModel folder at ``path``."""
    import tensorflow as tf

    anchor_boxes = tf.constant(anchors())

    class TinyDetector(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")])
        def detect(self, input_tensor):
            image = tf.image.resize(tf.cast(input_tensor, tf.float32), [INPUT_SIZE, INPUT_SIZE])
            _, class_scores = predict(unit_range(image))
            # Zero box encodings decode to the anchors themselves.
            boxes = tf.broadcast_to(anchor_boxes, [tf.shape(image)[0], GRID * GRID, 4])
            nms = tf.image.combined_non_max_suppression(
                boxes[:, :, tf.newaxis, :],
                class_scores[:, :, 1:],
                max_output_size_per_class=MAX_DETECTIONS,
                max_total_size=MAX_DETECTIONS,
                iou_threshold=IOU_THRESHOLD,
                score_threshold=SCORE_THRESHOLD,
                clip_boxes=False,
            )
            return {
                "detection_boxes": nms.nmsed_boxes,
                "detection_scores": nms.nmsed_scores,
                "detection_classes": nms.nmsed_classes + 1.0,  # label-map ids are 1-based
                "num_detections": tf.cast(nms.valid_detections, tf.float32),
            }

    path = Path(path)
    module = TinyDetector()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.detect})
    (path / "label_map.pbtxt").write_text(
        "".join(f"item {{\n  id: {i}\n  name: '{name}'\n}}\n" for i, name in LABELS.items()),
        encoding="utf-8",
    )
    return path
