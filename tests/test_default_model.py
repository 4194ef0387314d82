"""The shipped default model (COCO SSD MobileNet v2, full int8) finds people in real footage."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from livedroid.labels import load_labels, read_packed_labels
from tests.conftest import REPO, needs_module, shared_path

Interpreter = needs_module("ai_edge_litert.interpreter", "a test prerequisite").Interpreter

MODEL = REPO / "models" / "coco-ssd-mobilenet-v2" / "detect.tflite"
PERSON = 1  # COCO label-map id
# Frames of the Intel sample video with one person walking through (checked by eye).
PERSON_FRAMES = (100, 600, 800)


def frames(relative: str, wanted: tuple[int, ...]) -> list[np.ndarray]:
    with av.open(str(shared_path(relative))) as container:
        found = [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i in wanted]
    return found


def detect(image: np.ndarray) -> list[tuple[int, float]]:
    """(label-map id, score) of each detection, straight through ai_edge_litert."""
    runner = Interpreter(model_path=str(MODEL), num_threads=2).get_signature_runner()
    (name, detail), = runner.get_input_details().items()
    _, height, width, _ = detail["shape"]
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    out = runner(**{name: resized[np.newaxis]})
    count = int(out["num_detections"][0])
    return [(int(c) + 1, float(s)) for c, s in zip(out["detection_classes"][0, :count], out["detection_scores"][0, :count])]


def test_the_default_model_is_full_int8_with_coco_labels():
    model_input = Interpreter(model_path=str(MODEL)).get_input_details()[0]
    assert model_input["dtype"] == np.uint8 and list(model_input["shape"]) == [1, 300, 300, 3]
    labels = read_packed_labels(MODEL)
    assert len(labels) == 80 and labels[PERSON] == "person" and labels[90] == "toothbrush"
    assert load_labels(MODEL.parent / "labelmap.txt") == labels


@pytest.mark.parametrize("index", PERSON_FRAMES)
def test_the_default_model_finds_a_person(index):
    (frame,) = frames("videos/intel_one-by-one-person-detection.mp4", (index,))
    assert any(label == PERSON and score >= 0.5 for label, score in detect(frame))


def test_the_default_model_sees_no_one_in_the_empty_scene():
    (frame,) = frames("videos/intel_one-by-one-person-detection.mp4", (0,))
    assert not any(label == PERSON and score >= 0.5 for label, score in detect(frame))
