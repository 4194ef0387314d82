"""The onnx backend (livedroid/detectors/onnx_runtime.py): the red-square models of every output
layout as ONNX (tests/yolo_detector.py through tf2onnx), the default model converted, and the
errors a user meets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from livedroid.detections import box_iou
from livedroid.detectors import DEVICES, load_detector
from livedroid.errors import UserError
from tests.conftest import REPO, needs_module, run_cli, shared_path, square_position, write_clip
from tests.yolo_detector import CLASSES, KEPT, assert_finds_the_square, red_square_frame

LAYOUTS = ("od_api", "yolov5", "yolov8", "end_to_end")


@pytest.mark.parametrize("variant", ["float32", "int8"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_decodes_the_square_into_frame_pixels(onnx_layout_model, layout, variant) -> None:
    """float32: Ultralytics' form (NCHW float input); int8: a full-integer .tflite through tf2onnx
    (NHWC int8 input, quantised outputs dequantised with the graph's own parameters)."""
    detector = load_detector(onnx_layout_model(layout, variant))
    assert detector.backend == "onnx" and detector.layout.key == layout
    assert_finds_the_square(detector, layout, variant)


@pytest.mark.parametrize("layout", ["yolov5", "end_to_end"])
def test_coordinates_in_input_pixels_are_told_from_normalised_ones(onnx_layout_model, layout) -> None:
    assert_finds_the_square(load_detector(onnx_layout_model(layout, "float32", pixels=True)), layout, "float32")


def test_a_free_batch_dimension_runs_frames_in_one_call_with_the_same_results(onnx_layout_model) -> None:
    model = onnx_layout_model("yolov8", "batch")
    batched, single = load_detector(model, batch=4), load_detector(model)
    assert (batched.max_batch, single.max_batch) == (4, 1)
    frames = [red_square_frame((192, 320), (20 + 30 * k, 40, 60 + 30 * k, 80)) for k in range(5)]
    for together, alone in zip(batched.detect(frames), [single.detect([f])[0] for f in frames]):
        np.testing.assert_allclose(together.xyxy, alone.xyxy, atol=1e-3)
        assert together.class_ids.tolist() == alone.class_ids.tolist()


def test_a_fixed_batch_dimension_runs_one_frame_a_call(onnx_layout_model) -> None:
    assert load_detector(onnx_layout_model("yolov8"), batch=4).max_batch == 1


def test_labels_come_from_ultralytics_metadata_in_the_model(onnx_layout_model) -> None:
    detector = load_detector(onnx_layout_model("yolov8", "metadata"))
    assert detector.labels == {k + 1: name for k, name in enumerate(CLASSES)}
    found = detector.detect([red_square_frame((192, 320), (100, 60, 164, 124))])[0]
    assert found.labels == [CLASSES[c] for c, _, _ in KEPT["yolov8"]]


def test_a_labels_file_that_disagrees_with_the_class_count_is_one_line(onnx_layout_model, tmp_path: Path, livedroid_main) -> None:
    labels = tmp_path / "labelmap.txt"
    labels.write_text("red-square\necho\n")  # the model has 3 classes
    clip = write_clip(tmp_path / "clip.mp4", frames=2, audio=None)
    result = livedroid_main("run", str(clip), "-m", str(onnx_layout_model("yolov8")), "--labels", str(labels), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "outputs 3 classes but its labels name 2" in lines[0], result.stderr


@pytest.mark.parametrize("device", [d for d in DEVICES if d not in ("auto", "cpu")])
def test_a_provider_that_is_not_installed_is_one_line_naming_its_package(onnx_layout_model, tmp_path: Path, device, livedroid_main) -> None:
    import onnxruntime

    from livedroid.detectors.onnx_runtime import DEVICES as PROVIDERS

    providers, install = PROVIDERS[device]
    if providers[0] in onnxruntime.get_available_providers():
        pytest.skip(f"{providers[0]} is installed here")  # an accelerator build: the error cannot happen
    clip = write_clip(tmp_path / "clip.mp4", frames=2, audio=None)
    result = livedroid_main("run", str(clip), "-m", str(onnx_layout_model("yolov8")), "--device", device, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"livedroid: error: --device {device} needs {providers[0]}"), result.stderr
    assert lines[0].endswith(install)


def test_device_choices_are_the_backends_own() -> None:
    needs_module("onnxruntime", "the onnx backend needs onnxruntime (the onnx extra)")
    from livedroid.detectors.onnx_runtime import DEVICES as PROVIDERS

    assert set(DEVICES) == {"auto", *PROVIDERS}


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("model.onnx", b"not a protobuf at all", "not a valid ONNX model"),
        ("model.pt", b"PK\x03\x04", re.escape("unsupported model (give a .tflite or .onnx file, or a SavedModel folder)")),
    ],
)
def test_a_file_that_is_not_a_model_is_one_line(tmp_path: Path, name, content, expected) -> None:
    needs_module("onnxruntime", "the onnx backend needs onnxruntime (the onnx extra)")
    (tmp_path / name).write_bytes(content)
    with pytest.raises(UserError, match=expected):
        load_detector(tmp_path / name)


def test_a_model_of_no_known_layout_names_its_shapes_as_plain_lists(tmp_path: Path) -> None:
    needs_module("tf2onnx", "building the ONNX test model needs tf2onnx (the train extra)")
    import tensorflow as tf
    import tf2onnx

    spec = tf.TensorSpec([1, 3, 160, 160], tf.float32, name="images")
    model = tf.function(lambda images: tf.zeros([1, 300, 7]) + 0.0 * tf.reduce_mean(images), input_signature=[spec])
    tf2onnx.convert.from_function(model, input_signature=[spec], opset=17, output_path=str(tmp_path / "odd.onnx"))
    with pytest.raises(UserError, match=r"unknown output layout: \S+ \[1, 300, 7\]; known: "):
        load_detector(tmp_path / "odd.onnx")


def test_device_on_a_tflite_model_is_one_line(tiny_tflite: Path, tmp_path: Path, livedroid_main) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=2, audio=None)
    result = livedroid_main("run", str(clip), "-m", str(tiny_tflite), "--device", "cuda", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "livedroid: error: --device cuda needs the onnx backend: give a .onnx model (the tflite backend picks its own device)"


@pytest.mark.parametrize(
    "layout, variant, extra",
    [
        ("yolov8", "float32", ["--track"]),  # a track is confirmed in its second frame
        ("yolov5", "float32", ["--tiles", "--tile-size", "96"]),
        ("yolov8", "batch", ["--batch", "4", "--workers", "1"]),
        ("end_to_end", "metadata", ["--classes", "red-square"]),
        ("od_api", "int8", ["--device", "cpu"]),
    ],
)
def test_cli_run_writes_the_square(onnx_layout_model, tmp_path: Path, layout, variant, extra, livedroid_main) -> None:
    """160 x 96 frames, through the command line's entry: the square found in every frame, with the options
    that change how frames reach the model. (--motion is not among them: the clip's red square
    on grey differs from it by colour, hardly by brightness, which is what the gate sees.)"""
    clip = write_clip(tmp_path / "clip.mp4", frames=8, audio=None)
    result = livedroid_main("run", str(clip), "-m", str(onnx_layout_model(layout, variant)), *extra, "--jsonl", "out.jsonl",
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(records) == 8
    for record in records[1 if "--track" in extra else 0 :]:
        x, y = square_position(record["frame"], 160, 96, 32)
        best = max(record["detections"], key=lambda d: d["score"])
        assert best["class_id"] == KEPT[layout][0][0] + 1, record
        assert box_iou(best["box"], [x, y, x + 32, y + 32])[0] > 0.8, record


def test_batch_annotates_every_file_with_an_onnx_model(onnx_layout_model, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for name in ("a.mp4", "b.mp4"):
        write_clip(tmp_path / "in" / name, frames=6, audio=None)
    result = run_cli("batch", "in", "--out", "out", "-m", str(onnx_layout_model("yolov8")), "--no-video", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("a", "b"):
        records = [json.loads(line) for line in (tmp_path / "out" / f"{name}.jsonl").read_text().splitlines()]
        assert len(records) == 6 and all(r["detections"] for r in records)


@pytest.fixture(scope="module")
def default_model_onnx(tmp_path_factory) -> Path:
    """The shipped default model (full int8 .tflite) through tf2onnx, with its labels beside it."""
    needs_module("tf2onnx", "converting the default model needs tf2onnx (the train extra)")
    needs_module("onnxruntime", "the onnx backend needs onnxruntime (the onnx extra)")
    from tests.yolo_detector import onnx_from_tflite

    folder = tmp_path_factory.mktemp("default-onnx")
    source = REPO / "models" / "coco-ssd-mobilenet-v2"
    (folder / "labelmap.txt").write_bytes((source / "labelmap.txt").read_bytes())
    return onnx_from_tflite(source / "detect.tflite", folder / "detect.onnx")


def test_golden_the_default_model_as_onnx_finds_what_the_tflite_file_finds(default_model_onnx: Path) -> None:
    """Real frames of the quick start's clip (empty room; one person): the same detections."""
    from livedroid.sources import VideoSource

    clip = shared_path("videos/intel_one-by-one-person-detection.mp4")
    source = VideoSource(str(clip), max_frames=801)
    frames = [f.image for f in source.frames() if f.index in (0, 100, 600, 800)]
    source.close()
    onnx = load_detector(default_model_onnx, threads=2).detect(frames)
    tflite = load_detector(REPO / "models" / "coco-ssd-mobilenet-v2" / "detect.tflite", threads=2).detect(frames)
    for got, expected in zip(onnx, tflite):
        got, expected = got.select(min_score=0.5), expected.select(min_score=0.5)
        assert got.labels == expected.labels
        np.testing.assert_allclose(got.scores, expected.scores, atol=0.05)
        for box, reference in zip(got.xyxy, expected.xyxy):  # int8 kernels round differently: a few pixels
            assert box_iou(box, reference[None])[0] > 0.9
    assert [d.select(min_score=0.5).labels for d in tflite] == [[], ["person"], ["person"], ["person"]]  # the model card's


def test_bench_versus_measures_both_in_one_run(default_model_onnx: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=12, audio=None)
    result = run_cli("bench", str(clip), "--versus", str(default_model_onnx), "--frames", "12", "--repeat", "1",
                     "--live-seconds", "0", "--json", "bench.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    versus = json.loads((tmp_path / "bench.json").read_text())["versus"]
    assert versus["backend"] == "onnx" and versus["inference_ratio"] > 0 and versus["pipeline_ratio"] > 0
    assert "versus: " in result.stdout and "CPUExecutionProvider" in result.stdout


def test_serve_shares_batched_onnx_inference_across_cameras(onnx_layout_model, tmp_path: Path) -> None:
    """Two looping cameras on one ONNX model with a free batch: one shared session set that
    batches their frames, and the square (class 1: this model carries no names) on both."""
    from tests.service.serving import Served

    write_clip(tmp_path / "clip.mp4", frames=30, audio=None)
    served = Served("clip.mp4", "clip.mp4", "--loop", "--name", "north", "--name", "south", "--batch", "2",
                    "-m", str(onnx_layout_model("yolov8", "batch")), "--http", "127.0.0.1:0", cwd=tmp_path)
    try:
        served.wait_for(lambda: all(c["frames_processed"] >= 10 for c in served.stats().values()), 90, "both cameras processing")
        stats = served.json("/api/stats")
        (inference,) = stats["inference"].values()
        assert inference["max_batch"] == 2 and inference["frames"] >= 20
        served.wait_for(lambda: all(c["objects"].get("1") for c in served.stats().values()), 30, "the square on both")
        assert served.stop() == 130
    finally:
        served.kill()
    assert "Traceback" not in served.stderr
