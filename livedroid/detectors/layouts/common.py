"""What the layouts share: dequantisation, fitting frames to the input, boxes, class-aware NMS."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from livedroid.detections import class_aware_nms

#: Scores below this are dropped before NMS (cheap, and NMS cost grows with the boxes): the
#: tracker's low-score pass (``tracking.bytetrack.LOW_SCORE``) still sees what it needs.
SCORE_FLOOR = 0.1
#: IoU above which NMS drops the lower-scored box of a class (Ultralytics' default).
NMS_IOU = 0.7
#: Boxes kept per image at most (Ultralytics' ``max_det``).
MAX_DETECTIONS = 300
#: Coordinates are taken as normalised (0..1 of the input) when none exceeds this, else as input
#: pixels: raw YOLO outputs hold a box centre for every grid cell, spanning the whole input, so
#: pixel outputs of any input of 32 pixels or more reach far beyond it.
NORMALISED_MAX = 2.0
#: Ultralytics letterboxes with this grey.
PAD_GREY = 114


def dequantize(tensor: np.ndarray, detail: dict) -> np.ndarray:
    """An output as float32, through its own (scale, zero point) where it is quantised."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if tensor.dtype in (np.int8, np.uint8, np.int16) and scale:
        return (tensor.astype(np.float32) - zero_point) * np.float32(scale)
    return tensor.astype(np.float32, copy=False)


def input_encoder(input_range: tuple[float, float], detail: dict) -> Callable[[np.ndarray], np.ndarray]:
    """RGB uint8 pixels → what the input takes: the layout's float range, quantised with the input
    tensor's own (scale, zero point) for integer inputs.

    Integer inputs go through a 256-entry table with ``cv2.LUT`` (640 x 640: 0.36 ms, numpy
    indexing 1.6 ms); float inputs take one multiply-add (0.3 ms, a table of floats 1.8 ms).
    """
    low, high = input_range
    dtype = np.dtype(detail["dtype"])
    if dtype.kind not in "iu":
        step = np.asarray((high - low) / 255.0, dtype)
        return lambda pixels: np.multiply(pixels, step, dtype=dtype) + dtype.type(low)
    scale, zero_point = detail["quantization"]
    limits = np.iinfo(dtype)
    values = low + (high - low) * np.arange(256, dtype=np.float64) / 255.0
    # Halves round up (after float32 scale error is rounded off): zero point 127 with scale 2/255
    # (the default model) puts every pixel on a tie; round-half-even shifted half of them by one.
    table = np.clip(np.floor(np.round(values / scale + zero_point, 3) + 0.5), limits.min, limits.max).astype(dtype).view(np.uint8)
    if dtype == np.uint8 and np.array_equal(table, np.arange(256)):
        return lambda pixels: pixels  # the input takes raw pixels
    return lambda pixels: cv2.LUT(pixels, table).view(dtype)


def fit(image: np.ndarray, input_hw: tuple[int, int], letterbox: bool) -> tuple[np.ndarray, np.ndarray]:
    """The image at the input size, and (scale x, scale y, pad x, pad y) taking input pixels back
    to the image's: ``image = (input - pad) / scale``.

    Letterbox as Ultralytics' ``LetterBox``: one scale, centred, grey padding; else a plain resize.
    """
    height, width = image.shape[:2]
    in_h, in_w = input_hw
    if not letterbox:
        resized = image if (width, height) == (in_w, in_h) else cv2.resize(image, (in_w, in_h), interpolation=cv2.INTER_LINEAR)
        return resized, np.array([in_w / width, in_h / height, 0.0, 0.0], np.float32)
    scale = min(in_w / width, in_h / height)
    new_w, new_h = round(width * scale), round(height * scale)
    left, top = round((in_w - new_w) / 2 - 0.1), round((in_h - new_h) / 2 - 0.1)
    canvas = np.full((in_h, in_w, 3), PAD_GREY, np.uint8)
    canvas[top : top + new_h, left : left + new_w] = (
        image if (new_w, new_h) == (width, height) else cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    )
    return canvas, np.array([scale, scale, left, top], np.float32)


def to_image(xyxy: np.ndarray, transform: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes in input pixels to pixels of the ``width`` x ``height`` image, clipped to it."""
    scale, pad = np.tile(transform[:2], 2), np.tile(transform[2:], 2)
    boxes = (xyxy - pad) / scale
    return np.clip(boxes, 0, np.array([width, height, width, height], np.float32)).astype(np.float32)


def to_input_pixels(boxes: np.ndarray, coordinates: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """(N, 4) x/y-ordered boxes in input pixels: scaled up when ``coordinates`` (all of the
    output's coordinates, boxes kept or not) are normalised by :data:`NORMALISED_MAX`'s rule."""
    if coordinates.size and float(np.abs(coordinates).max()) > NORMALISED_MAX:
        return boxes
    in_h, in_w = input_hw
    return boxes * np.array([in_w, in_h, in_w, in_h], np.float32)


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """Centre, width, height → corners."""
    half = xywh[:, 2:4] / 2
    return np.concatenate([xywh[:, :2] - half, xywh[:, :2] + half], axis=1)


def raw_output_nms(xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Indices a raw (YOLO-style) output keeps: livedroid's one NMS with the layouts' IoU and cap."""
    return class_aware_nms(xyxy, scores, classes, NMS_IOU, MAX_DETECTIONS)


#: Output strides of YOLO heads: P3-P5 models, and P6 models with a stride-64 level.
YOLO_STRIDES = ((8, 16, 32), (8, 16, 32, 64))


def grid_cell_counts(input_hw: tuple[int, int]) -> set[int]:
    """How many grid cells a YOLO head has for this input, per stride set: the N of a raw output
    (YOLOv5 has 3 anchors a cell, so 3N rows)."""
    height, width = input_hw
    return {sum((height // s) * (width // s) for s in strides) for strides in YOLO_STRIDES}
