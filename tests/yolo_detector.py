"""Tiny but real models of the other TFLite output layouts, for tests: Ultralytics' raw YOLOv5 and
YOLOv8 heads, end-to-end (NMS inside) rows, and the Object Detection API's four outputs without
the post-process op. Each finds the red square of tests/conftest.py's clips by arithmetic, so its
right answer is known by construction.

Redness (R - (G + B) / 2) through a steep sigmoid is a red mask; its per-column and per-row maxima
give the square's edges: ``x1 = 1 - max((1 - i / S) * column)`` and ``x2 = max((i + 1) / S *
column)`` over pixel columns i (where green is not far below 0: fed the wrong input range, the
model sees nothing), likewise for y (normalised; pixel variants multiply by S). The
model reports three boxes (:data:`REPORTED`): the square, a duplicate of it shifted by 2 pixels
of the same class (NMS must drop it), and another shifted by 2 pixels of another class (NMS must
keep it). The rest of a raw head are grid-cell centres scored 0, as in a real model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

INPUT_SIZE = 160  # YOLO grid cells at strides 8, 16, 32: 400 + 100 + 25 = 525
CLASSES = ("red-square", "echo", "other")
SHIFT = 2  # input pixels between the reported boxes
#: (class index, score, (dx, dy) in input pixels) of each reported box.
REPORTED = ((0, 0.9, (0, 0)), (0, 0.6, (SHIFT, 0)), (1, 0.7, (0, SHIFT)))
E2E_ROWS = 300
OD_API_ROWS = 10
#: what an end-to-end model keeps (NMS is its own): the square and the other class's box.
E2E_REPORTED = (REPORTED[0], REPORTED[2])
#: The Object Detection API layout's one box: 0-based class 2, and its outputs' signature order.
OD_API_CLASS, OD_API_ORDER = 2, ("scores", "boxes", "count", "classes")


FRAME_HW, BOX = (192, 320), (100, 60, 164, 124)  # not square: letterboxed at scale 0.5, 32 px bands
#: What survives decoding (class index, score, (dx, dy) input pixels): NMS drops the same-class
#: duplicate of raw heads and keeps the other class's box.
KEPT = {
    "od_api": ((OD_API_CLASS, 0.9, (0, 0)),),
    "yolov5": (REPORTED[0], REPORTED[2]),
    "yolov8": (REPORTED[0], REPORTED[2]),
    "end_to_end": E2E_REPORTED,
}
TOLERANCE = {"float32": (1.0, 1e-4), "float16": (1.0, 1e-2), "int8": (2.5, 1e-2)}  # (pixels, score)


def assert_finds_the_square(detector, layout: str, quantization: str) -> None:
    """``detector`` (any backend) finds what the ``layout`` model reports of :data:`BOX` in a
    :data:`FRAME_HW` frame, in frame pixels, and nothing in a frame without the square."""
    from numpy.testing import assert_allclose

    found, nothing = detector.detect([red_square_frame(FRAME_HW, BOX), red_square_frame(FRAME_HW, (0, 0, 0, 0))])
    # Input pixels per frame pixel: letterbox keeps one scale, the OD API stretches.
    scale = (0.5, 0.5) if detector.layout.letterbox else (INPUT_SIZE / FRAME_HW[1], INPUT_SIZE / FRAME_HW[0])
    expected = np.array([np.add(BOX, [dx / scale[0], dy / scale[1]] * 2) for _, _, (dx, dy) in KEPT[layout]])
    pixel_tolerance, score_tolerance = TOLERANCE[quantization]
    assert found.class_ids.tolist() == [c + 1 for c, _, _ in KEPT[layout]]  # 0-based classes → label-map ids
    assert_allclose(found.scores, [s for _, s, _ in KEPT[layout]], atol=score_tolerance)
    assert_allclose(found.xyxy, expected, atol=pixel_tolerance)
    assert len(nothing) == 0


def grid_centres() -> np.ndarray:
    """(cx, cy, w, h) of every YOLO grid cell, normalised, stride by stride."""
    cells = []
    for stride in (8, 16, 32):
        centres = (np.arange(INPUT_SIZE // stride) + 0.5) * stride / INPUT_SIZE
        cy, cx = (g.reshape(-1) for g in np.meshgrid(centres, centres, indexing="ij"))
        cells.append(np.stack([cx, cy, np.full_like(cx, stride / INPUT_SIZE), np.full_like(cx, stride / INPUT_SIZE)], 1))
    return np.concatenate(cells).astype(np.float32)


def _square(image):
    """(x1, y1, x2, y2) normalised [B, 4] and presence [B, 1] of the red square in [B, S, S, 3] RGB in [0, 1]."""
    import tensorflow as tf

    redness = image[..., 0] - (image[..., 1] + image[..., 2]) / 2
    # Green + 0.5 above 0.4 too: the input is in the range the layout promises (0.08 + 0.5 in
    # [0, 1]; fed [-1, 1], green is -0.84).
    mask = tf.sigmoid(80.0 * (tf.minimum(redness, image[..., 1] + 0.5) - 0.4))
    columns, rows = tf.reduce_max(mask, axis=1), tf.reduce_max(mask, axis=2)
    start = tf.constant(1.0 - np.arange(INPUT_SIZE, dtype=np.float32) / INPUT_SIZE)
    end = tf.constant((np.arange(INPUT_SIZE, dtype=np.float32) + 1) / INPUT_SIZE)
    box = tf.stack([
        1.0 - tf.reduce_max(start * columns, axis=1),
        1.0 - tf.reduce_max(start * rows, axis=1),
        tf.reduce_max(end * columns, axis=1),
        tf.reduce_max(end * rows, axis=1),
    ], axis=1)
    return box, tf.reduce_max(columns, axis=1, keepdims=True)


def _reported(image, reported, pixels: bool):
    """One row per reported box: [B, len(reported), 4] corners (normalised or pixels), class scores
    [B, len(reported), C], scores [B, len(reported)]."""
    import tensorflow as tf

    box, present = _square(image)
    corners, class_scores = [], []
    for class_index, score, (dx, dy) in reported:
        corners.append(box + np.array([dx, dy, dx, dy], np.float32) / INPUT_SIZE)
        class_scores.append(score * present * tf.constant(np.eye(len(CLASSES), dtype=np.float32)[class_index]))
    corners = tf.stack(corners, axis=1) * (INPUT_SIZE if pixels else 1.0)
    return corners, tf.stack(class_scores, axis=1)


def _xywh(corners):
    import tensorflow as tf

    return tf.concat([(corners[..., :2] + corners[..., 2:]) / 2, corners[..., 2:] - corners[..., :2]], axis=-1)


def _padding(rows, batch, width: int):
    """``rows`` of a raw head for the cells not reported: grid centres, all scores 0."""
    import tensorflow as tf

    return tf.broadcast_to(tf.constant(rows), [batch, rows.shape[0], width])


def outputs(layout: str, image, pixels: bool = False):
    """The model of ``layout`` on [B, S, S, 3] RGB: [0, 1] for YOLO layouts, [-1, 1] for od_api."""
    import tensorflow as tf

    batch = tf.shape(image)[0]
    unit = pixels * (INPUT_SIZE - 1.0) + 1.0  # grid rows in the box units
    if layout == "od_api":
        corners, class_scores = _reported((image + 1.0) / 2.0, REPORTED[:1], pixels=False)
        scores = tf.reduce_max(class_scores, axis=2)
        present = tf.round(scores[:, :1] / REPORTED[0][1])
        rest = OD_API_ROWS - 1
        values = {
            "boxes": tf.pad(tf.gather(corners, [1, 0, 3, 2], axis=2), [[0, 0], [0, rest], [0, 0]]),
            "scores": tf.pad(scores, [[0, 0], [0, rest]]),
            "classes": tf.pad(present * OD_API_CLASS, [[0, 0], [0, rest]]),
            "count": tf.reshape(present, [-1]),
        }
        return {f"output_{k}": values[role] for k, role in enumerate(OD_API_ORDER)}
    if layout == "end_to_end":
        corners, class_scores = _reported(image, E2E_REPORTED, pixels)
        classes = tf.cast(tf.argmax(class_scores, axis=2), tf.float32)[..., None]
        rows = tf.concat([corners, tf.reduce_max(class_scores, axis=2, keepdims=True), classes], axis=2)
        return tf.pad(rows, [[0, 0], [0, E2E_ROWS - len(E2E_REPORTED)], [0, 0]])
    corners, class_scores = _reported(image, REPORTED, pixels)
    cells = grid_centres() * unit
    if layout == "yolov5":
        objectness = tf.reduce_max(class_scores, axis=2, keepdims=True)
        heads = tf.concat([_xywh(corners), objectness, tf.cast(class_scores > 0, tf.float32)], axis=2)
        grid = np.concatenate([np.tile(cells, (3, 1)), np.zeros((3 * len(cells), 1 + len(CLASSES)), np.float32)], 1)
        return tf.concat([heads, _padding(grid[len(REPORTED):], batch, 5 + len(CLASSES))], axis=1)
    heads = tf.concat([_xywh(corners), class_scores], axis=2)
    grid = np.concatenate([cells, np.zeros((len(cells), len(CLASSES)), np.float32)], 1)
    return tf.transpose(tf.concat([heads, _padding(grid[len(REPORTED):], batch, 4 + len(CLASSES))], axis=1), [0, 2, 1])


def red_square_frame(size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """An RGB frame of ``size`` (height, width): gray, the clips' red (230, 20, 20) at ``box``."""
    image = np.full((*size, 3), 60, np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = (230, 20, 20)
    return image


def _calibration(layout: str, count: int = 12, seed: int = 0):
    """Inputs with red squares of varied places and sizes, letterbox grey above and below."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        side = int(rng.integers(16, 48))
        x, y = (int(v) for v in rng.integers(0, INPUT_SIZE - side, 2))
        image = red_square_frame((INPUT_SIZE, INPUT_SIZE), (x, y, x + side, y + side)).astype(np.float32) / 255.0
        image[:20] = image[-20:] = 114 / 255.0
        yield [(image * 2.0 - 1.0 if layout == "od_api" else image)[None]]


def build(path: str | Path, layout: str, *, pixels: bool = False, quantization: str = "float32") -> Path:
    """Write the ``layout`` model as a .tflite: float32, float16 weights, or full int8 (int8 input
    and outputs, as Ultralytics' ``int8=True`` full-integer export)."""
    import tensorflow as tf

    model = tf.function(lambda image: outputs(layout, image, pixels),
                        input_signature=[tf.TensorSpec([1, INPUT_SIZE, INPUT_SIZE, 3], tf.float32, name="images")])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _calibration(layout)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    path = Path(path)
    path.write_bytes(converter.convert())
    return path


def build_constant(path: str | Path, shape: list[int]) -> Path:
    """A float32 .tflite whose one output is zeros of ``shape`` (plus 0 x its input): a layout
    that matches nothing, for the error."""
    import tensorflow as tf

    model = tf.function(lambda image: tf.zeros(shape) + 0.0 * tf.reduce_mean(image),
                        input_signature=[tf.TensorSpec([1, INPUT_SIZE, INPUT_SIZE, 3], tf.float32, name="images")])
    path = Path(path)
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model).convert())
    return path


#: Ultralytics' ONNX metadata, as its exporter writes it (a dict literal of names, the input size).
ULTRALYTICS_METADATA = {"names": repr(dict(enumerate(CLASSES))), "imgsz": f"[{INPUT_SIZE}, {INPUT_SIZE}]", "task": "detect"}


def build_onnx(path: str | Path, layout: str, *, pixels: bool = False, batch: int | None = 1,
               metadata: dict[str, str] | None = None) -> Path:
    """The ``layout`` model as Ultralytics exports ONNX: float32 NCHW input ``images`` [B, 3, S, S]
    (``batch`` None: a free batch dimension), converted by tf2onnx; ``metadata`` written into it."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    spec = tf.TensorSpec([batch, 3, INPUT_SIZE, INPUT_SIZE], tf.float32, name="images")
    model = tf.function(lambda images: outputs(layout, tf.transpose(images, [0, 2, 3, 1]), pixels), input_signature=[spec])
    path = Path(path)
    proto, _ = tf2onnx.convert.from_function(model, input_signature=[spec], opset=17)
    for key, value in (metadata or {}).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    return path


def onnx_from_tflite(tflite: str | Path, path: str | Path) -> Path:
    """A .tflite file as ONNX through tf2onnx (int8 files keep integer input and outputs, with
    QuantizeLinear/DequantizeLinear around them)."""
    import tf2onnx

    tf2onnx.convert.from_tflite(str(tflite), opset=17, output_path=str(path))
    return Path(path)
