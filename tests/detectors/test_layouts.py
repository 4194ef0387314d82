"""TFLite output layouts (livedroid/detectors/layouts): real models of each layout, built by
tests/yolo_detector.py, whose right answer is the red square they are shown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from livedroid.detections import box_iou
from livedroid.detectors import load_detector
from livedroid.detectors.layouts import UnknownLayout, detect_layout
from livedroid.errors import UserError
from tests.conftest import needs_module, run_cli, square_position, write_clip
from tests.yolo_detector import KEPT, assert_finds_the_square, build_constant

#: (layout, coordinates in input pixels, quantization)
CASES = [
    ("od_api", False, "float32"), ("od_api", False, "int8"),
    ("yolov5", False, "float32"), ("yolov5", True, "float32"), ("yolov5", False, "int8"),
    ("yolov8", False, "float32"), ("yolov8", True, "float32"), ("yolov8", False, "int8"), ("yolov8", False, "float16"),
    ("end_to_end", False, "float32"), ("end_to_end", True, "float32"), ("end_to_end", False, "int8"),
]


@pytest.mark.parametrize("layout, pixels, quantization", CASES)
def test_each_layout_decodes_the_square_into_frame_pixels(layout_model, layout, pixels, quantization) -> None:
    detector = load_detector(layout_model(layout, pixels, quantization))
    assert detector.layout.key == layout
    assert_finds_the_square(detector, layout, quantization)


def test_nms_keeps_the_overlapping_box_of_another_class_only() -> None:
    """The boxes the raw models report overlap beyond NMS's IoU (0.7), so class-blind NMS would
    drop the other class's box too."""
    from livedroid.detectors.layouts.common import NMS_IOU, raw_output_nms

    boxes = np.array([[10, 10, 42, 42], [12, 10, 44, 42], [10, 12, 42, 44]], np.float32)
    assert box_iou(boxes[0], boxes[1:]).min() > NMS_IOU
    kept = raw_output_nms(boxes, np.array([0.9, 0.6, 0.7], np.float32), np.array([0, 0, 1]))
    assert kept.tolist() == [0, 2]


@pytest.mark.parametrize(
    "shapes, input_hw, layout",
    [
        ([[1, 1575, 8]], (160, 160), "yolov5"),
        ([[1, 25200, 85]], (640, 640), "yolov5"),  # yolov5s: 3 x 8400 rows, 80 classes
        ([[1, 84, 8400]], (640, 640), "yolov8"),
        ([[1, 84, 16800]], (1280, 640), "yolov8"),  # 160 x 80 + 80 x 40 + 40 x 20 cells
        ([[1, 300, 6]], (640, 640), "end_to_end"),
        ([[1], [1, 25, 4], [1, 25], [1, 25]], (320, 320), "od_api"),
    ],
)
def test_layouts_are_told_apart_by_shape(shapes, input_hw, layout) -> None:
    outputs = [{"name": f"out{k}", "index": k, "shape": np.array(s), "dtype": np.float32} for k, s in enumerate(shapes)]
    assert detect_layout(outputs, input_hw).key == layout


@pytest.mark.parametrize("shape", [[1, 300, 7], [1, 8400, 84]])  # 7 columns; YOLOv8's transposed
def test_a_shape_of_no_layout_is_one_line_naming_it(shape) -> None:
    outputs = [{"name": "Identity", "index": 0, "shape": np.array(shape), "dtype": np.float32}]
    with pytest.raises(UnknownLayout) as error:
        detect_layout(outputs, (640, 640))
    message = str(error.value)
    assert message.startswith(f"unknown output layout: Identity {shape}; known: saved_model ")
    assert all(key in message for key in ("od_api", "yolov5", "yolov8", "end_to_end")) and "\n" not in message


@pytest.mark.parametrize("layout, pixels, quantization", [
    ("od_api", False, "int8"), ("yolov5", True, "float32"), ("yolov8", False, "int8"), ("end_to_end", False, "float32"),
])
def test_cli_run_writes_the_square_of_each_layout(layout_model, tmp_path: Path, layout, pixels, quantization) -> None:
    """160 x 96 frames: letterboxed with 32-pixel bands for YOLO, stretched for the OD API."""
    clip = write_clip(tmp_path / "clip.mp4", frames=8, audio=None)
    result = run_cli("run", str(clip), "-m", str(layout_model(layout, pixels, quantization)),
                     "--jsonl", "out.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(records) == 8
    for record in records:
        x, y = square_position(record["frame"], 160, 96, 32)
        classes = [d["class_id"] for d in record["detections"]]
        assert classes == [c + 1 for c, _, _ in KEPT[layout]], record
        assert box_iou(record["detections"][0]["box"], [x, y, x + 32, y + 32])[0] > 0.85, record


def test_cli_error_for_a_model_of_no_known_layout(tmp_path: Path) -> None:
    needs_module("tensorflow", "building a TFLite model needs TensorFlow")
    model = build_constant(tmp_path / "odd.tflite", [1, 300, 7])
    with pytest.raises(UserError, match=r"unknown output layout: \w+ \[1, 300, 7\]; known: "):
        load_detector(model)
    result = run_cli("run", str(write_clip(tmp_path / "clip.mp4", frames=2, audio=None)), "-m", str(model),
                     "--jsonl", "out.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livedroid: error: ") and "[1, 300, 7]; known: saved_model" in lines[0], result.stderr


@pytest.mark.parametrize(
    "input_range, detail, expected",
    [
        ((-1.0, 1.0), {"dtype": np.float32}, np.arange(256) * 2 / 255 - 1),
        ((0.0, 1.0), {"dtype": np.float32}, np.arange(256) / 255),
        ((-1.0, 1.0), {"dtype": np.uint8, "quantization": (2 / 255, 127)}, np.arange(256)),  # the default model's: raw pixels
        ((0.0, 1.0), {"dtype": np.int8, "quantization": (1 / 255, -128)}, np.arange(256) - 128),  # Ultralytics int8
    ],
)
def test_pixels_are_encoded_in_the_layouts_range_with_the_inputs_quantisation(input_range, detail, expected) -> None:
    from livedroid.detectors.layouts.common import input_encoder

    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    encoded = input_encoder(input_range, detail)(pixels)
    assert encoded.dtype == detail["dtype"]
    np.testing.assert_allclose(encoded[..., 1].reshape(-1), expected, atol=1e-6)
