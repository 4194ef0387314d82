"""The whole training path on a tiny dataset made here: prepare → fit from scratch → eval →
export → TFLite, then fine-tuning from a zoo archive served on 127.0.0.1, and resuming.

A few steps teach the model nothing; these tests check that every stage runs and writes real,
loadable outputs that agree with each other.
"""

from __future__ import annotations

import hashlib
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from tests.conftest import needs_module
from tests.training.conftest import make_voc_dataset
from livedroid.training.cli import main

needs_module("object_detection", "the Object Detection API (pip install 'livedroid[train]') is not installed")
pytestmark = pytest.mark.slow

ZOO_NAME = "ssd_mobilenet_v2_320x320_coco17_tpu-8"
TINY = ["--model", "ssd_mobilenet_v2_320", "--batch-size", "2", "--checkpoint-every", "2", "--pretrained", "none"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The all-in-one command on 8 images, 3 steps; returns (work dir, model dir, its output)."""
    root = tmp_path_factory.mktemp("e2e")
    data = make_voc_dataset(root / "data", count=8)
    work, model = root / "work", root / "models" / "tiny"
    argv = [str(data), "--out", str(model), "--work-dir", str(work), "--steps", "3", "--val-fraction", "0.25", *TINY]
    assert main(argv + ["--quantization", "float32", "int8", "--onnx"]) == 0
    return work, model


def test_all_in_one_writes_a_playable_model(trained, capsys):
    work, model = trained
    assert (work / "training" / "ckpt-3.index").is_file() and (work / "training" / "ckpt-2.index").is_file()
    assert len((work / "training" / "train" / "losses.csv").read_text().splitlines()) == 4
    assert list((work / "training" / "train").glob("events.out.tfevents.*"))

    metrics = json.loads((model / "eval" / "metrics.json").read_text())
    assert set(metrics) >= {"mAP", "mAP@0.5", "per_class_AP", "images", "mistakes"} and metrics["images"] == 2
    assert metrics["model"] == str(model / "model_int8.tflite")  # the deployed file is what eval measures
    assert sum(sum(row.values()) for row in metrics["mistakes"]["confusion"].values()) == 2  # one object each
    assert set(metrics["per_class_AP"]) == {"red", "blue"}
    card = (model / "MODEL_CARD.md").read_text()
    assert "validation photos" in card and "| annotated \\ found as |" in card and "livedroid train" in card
    for picture in ("contact_sheet.png", "loss_curve.png"):
        assert Image.open(model / "eval" / picture).size[0] > 300

    agreements = {a["variant"]: a for a in json.loads((model / "export.json").read_text())}
    assert set(agreements) == {"float32", "int8", "onnx"}
    for exact in ("float32", "onnx"):  # the same float graph: every SavedModel detection found again
        assert agreements[exact]["reference"] >= 2 and agreements[exact]["matched"] == agreements[exact]["reference"]

    from livedroid.detectors import load_detector
    from livedroid.labels import load_labels

    assert load_labels(model / "label_map.pbtxt") == {1: "blue", 2: "red"}
    image = np.asarray(Image.open(next((work.parent / "data" / "images").glob("*.jpg"))))
    assert not (model / "saved_model").exists()  # the model folder holds what livedroid run plays
    for path in (model / "model.tflite", model / "model_int8.tflite", model / "model.onnx", work / "export"):
        detector = load_detector(path)
        (found,) = detector.detect([image])
        assert set(found.labels) <= {"blue", "red"}
    assert load_detector(work / "export", batch=2).max_batch == 2  # the SavedModel takes a batch of frames
    onnx = load_detector(model / "model.onnx", batch=2)  # so does its ONNX graph, with the labels inside
    assert (onnx.backend, onnx.layout.key, onnx.max_batch) == ("onnx", "saved_model", 2)
    isolated = model.parent / "alone"
    isolated.mkdir()
    (isolated / "model.onnx").write_bytes((model / "model.onnx").read_bytes())
    assert load_detector(isolated / "model.onnx").labels == {1: "blue", 2: "red"}


def test_fine_tune_from_a_served_zoo_archive_then_resume(trained, http_folder, tmp_path, monkeypatch, capsys):
    work, _ = trained
    served, url = http_folder
    archive = served / f"{ZOO_NAME}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # the zoo layout: NAME/checkpoint/ckpt-0.*
        for part in (work / "training").glob("ckpt-3.*"):
            tar.add(part, f"{ZOO_NAME}/checkpoint/{part.name.replace('ckpt-3', 'ckpt-0')}")
    monkeypatch.setenv("LIVEDROID_ZOO_URL", url)
    monkeypatch.setenv("LIVEDROID_CACHE", str(tmp_path / "cache"))
    from livedroid.training import zoo

    monkeypatch.setitem(zoo.ZOO_MODELS, ZOO_NAME, zoo.ZooModel(ZOO_NAME, "ssd_mobilenet_v2_320", hashlib.sha256(archive.read_bytes()).hexdigest()))

    run = tmp_path / "run"
    start = ["fit", "--data", str(work / "dataset"), "--out", str(run), "--steps", "1", *TINY[2:-2], "--pretrained", ZOO_NAME]
    assert main(start + ["--model", "ssd_mobilenet_v2_fpnlite_320"]) == 2  # not the checkpoint's architecture
    assert "does not fit this model's architecture" in capsys.readouterr().err
    assert not run.exists()  # a failed start leaves no run to resume
    assert main(start) == 0  # the zoo model's own template
    assert f"starting from {tmp_path / 'cache' / 'zoo' / ZOO_NAME / 'checkpoint' / 'ckpt-0'} (detection)" in capsys.readouterr().out
    assert main(["fit", "--out", str(run), "--steps", "2"]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert (run / "ckpt-2.index").is_file()
