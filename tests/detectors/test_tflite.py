"""Golden test of the TFLite backend: a real COCO model on frames of a real clip."""

import json
from pathlib import Path

import av
import numpy as np
import pytest

from livedroid.detections import box_iou
from livedroid.detectors import load_detector
from livedroid.errors import UserError
from tests.conftest import REPO, needs_module, shared_path

GOLDEN = json.loads((REPO / "tests" / "data" / "golden_intel_coco_v1.json").read_text())


def golden_frames() -> dict[int, np.ndarray]:
    wanted = {int(k) for k in GOLDEN["frames"]}
    frames = {}
    with av.open(str(shared_path(GOLDEN["clip"]))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                frames[index] = frame.to_ndarray(format="rgb24")
            if index >= max(wanted):
                break
    return frames


def test_coco_model_finds_the_expected_people_on_real_frames(coco_v1: Path) -> None:
    detector = load_detector(coco_v1, threads=2)
    assert detector.labels[1] == "person"  # labelmap.txt beside the model, '???' first
    frames = golden_frames()
    results = detector.detect([frames[i] for i in sorted(frames)])
    for index, detections in zip(sorted(frames), results):
        people = detections.select(0.5, {"person"})
        expected = GOLDEN["frames"][str(index)]
        assert len(people) == len(expected), f"frame {index}: {people.labels}"
        for want, box in zip(expected, people.xyxy):
            assert box_iou(want["box"], box.tolist()) > 0.85, f"frame {index}: {box} vs {want['box']}"


def test_batch_request_falls_back_to_one_when_the_model_cannot_resize(coco_v1: Path) -> None:
    detector = load_detector(coco_v1, batch=4)
    assert detector.max_batch == 1
    frame = np.zeros((100, 120, 3), np.uint8)
    assert len(detector.detect([frame, frame, frame])) == 3


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a valid TFLite model"),
        (b"garbage" * 50, "not a valid TFLite model"),
    ],
)
def test_corrupt_model_is_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    model = tmp_path / "broken.tflite"
    model.write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_detector(model)


def test_truncated_model_is_a_clear_error(tmp_path: Path, coco_v1: Path) -> None:
    model = tmp_path / "cut.tflite"
    model.write_bytes(coco_v1.read_bytes()[: 200_000])
    with pytest.raises(UserError, match="broken|not a valid|cannot run"):
        load_detector(model)


@pytest.mark.parametrize(
    "name, message",
    [("model.pt", "unsupported model"), ("nothing.tflite", "model not found")],
)
def test_unsupported_or_missing_model(tmp_path: Path, name: str, message: str) -> None:
    if name.endswith(".pt"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(UserError, match=message):
        load_detector(tmp_path / name)


def test_outputs_are_found_through_the_postprocess_op_whatever_their_names(tmp_path: Path, monkeypatch) -> None:
    """Models converted straight from an Object Detection API export name outputs output_0..3."""
    needs_module("tensorflow", "building a TFLite model needs TensorFlow")
    import livedroid.training.ssd_tflite_graph as graph
    from tests.tiny_detector import build_tiny_tflite, red_square_image

    monkeypatch.setattr(graph, "OUTPUT_NAMES", ("output_0", "output_1", "output_2", "output_3"))
    model = build_tiny_tflite(tmp_path / "anonymous.tflite")
    detector = load_detector(model)
    (found,) = detector.detect([red_square_image((128, 128), (40, 40, 88, 88))])
    assert found.labels == ["red-square"]
    assert found.scores[0] > 0.5
    assert box_iou(found.xyxy[0].tolist(), [40, 40, 88, 88]) > 0.5


def test_an_import_error_caused_by_ctrl_c_is_the_interrupt_not_a_missing_runtime() -> None:
    from livedroid.detectors.tflite import _reraise_interrupt

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise ImportError("loading the native module failed") from interrupt
    except ImportError as error:
        with pytest.raises(KeyboardInterrupt):
            _reraise_interrupt(error)
    _reraise_interrupt(ImportError("no module named tflite_runtime"))  # a runtime really missing: the next is tried
