"""The tiny red-square detector finds its square through each runtime path the real models take."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livedroid.detections import box_iou
from livedroid.labels import load_labels, read_packed_labels
from livedroid.pixels import unit_range
from tests.conftest import needs_module
from tests.tiny_detector import LABELS, build_tiny_savedmodel, build_tiny_tflite, red_square_image

tf = needs_module("tensorflow", "the tiny detector is built with TensorFlow (train extra)")
Interpreter = needs_module("ai_edge_litert.interpreter", "a test prerequisite").Interpreter

IMAGE_SIZE = (96, 128)  # height, width: not the model's 64x64, so resizing is exercised
SQUARES = [(32, 24, 80, 60), (70, 40, 118, 76)]  # x1, y1, x2, y2 in pixels


def normalized_yxyx(box_xyxy: tuple[int, int, int, int]) -> np.ndarray:
    x1, y1, x2, y2 = box_xyxy
    height, width = IMAGE_SIZE
    return np.array([y1 / height, x1 / width, y2 / height, x2 / width])


@pytest.fixture(scope="module", params=["float32", "float16", "int8"])
def tflite_model(request, tmp_path_factory):
    return build_tiny_tflite(tmp_path_factory.mktemp("tiny") / "detect.tflite", request.param)


def run_tflite(model_path, image: np.ndarray) -> dict[str, np.ndarray]:
    interpreter = Interpreter(model_path=str(model_path), num_threads=2)
    runner = interpreter.get_signature_runner("serving_default")
    (name, detail), = runner.get_input_details().items()
    _, height, width, _ = detail["shape"]
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)[np.newaxis]
    model_input = resized if detail["dtype"] == np.uint8 else unit_range(resized)
    return runner(**{name: model_input})


@pytest.mark.parametrize("square", SQUARES)
def test_tflite_finds_the_square(tflite_model, square):
    out = run_tflite(tflite_model, red_square_image(IMAGE_SIZE, square))
    assert int(out["num_detections"][0]) >= 1
    assert out["detection_scores"][0, 0] > 0.5
    assert out["detection_classes"][0, 0] == 0  # 0-based: label-map id 1
    assert box_iou(out["detection_boxes"][0, 0], normalized_yxyx(square))[0] > 0.5


def test_tflite_finds_nothing_without_red(tflite_model):
    out = run_tflite(tflite_model, np.full((*IMAGE_SIZE, 3), 128, np.uint8))
    assert int(out["num_detections"][0]) == 0


def test_tflite_carries_its_labels(tflite_model):
    assert read_packed_labels(tflite_model) == LABELS


def test_savedmodel_finds_the_square_in_each_frame_of_a_batch(tmp_path):
    model_dir = build_tiny_savedmodel(tmp_path / "saved_model")
    detect = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    frames = np.stack([red_square_image(IMAGE_SIZE, square) for square in SQUARES])
    out = {key: value.numpy() for key, value in detect(input_tensor=tf.constant(frames)).items()}
    assert out["detection_boxes"].shape == (len(SQUARES), 100, 4)
    for frame, square in enumerate(SQUARES):
        assert int(out["num_detections"][frame]) >= 1
        assert out["detection_scores"][frame, 0] > 0.5
        assert out["detection_classes"][frame, 0] == 1.0  # 1-based label-map id
        assert box_iou(out["detection_boxes"][frame, 0], normalized_yxyx(square))[0] > 0.5
    assert load_labels(model_dir / "label_map.pbtxt") == LABELS
