"""The whole training path in one run on tiny folders made here: a labelImg folder merged with a
mined one (holding a frame a reviewer accepted as empty), all squeezed to low contrast → prepare
→ fit from scratch → export (float32, int8, ONNX) → eval; the same command again resumes; then
fine-tuning from a zoo archive served on 127.0.0.1, and resuming.

A few steps teach the model nothing; these tests check that every stage runs and writes real,
loadable outputs that agree with each other. The tests share the one run (a training run is the
suite's most expensive thing); the README's command as typed, in a fresh process, is
test_readme_recipe.py.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from livedroid.annotations import AnnotatedImage
from livedroid.labelling.dataset import LabellingFolder
from tests.conftest import needs_module
from tests.training.conftest import jpeg, make_mined_folder, make_voc_dataset
from livedroid.training.cli import main

needs_module("object_detection", "the Object Detection API (pip install 'livedroid[train]') is not installed")
pytestmark = pytest.mark.slow

ZOO_NAME = "ssd_mobilenet_v2_320x320_coco17_tpu-8"
TINY = ["--model", "ssd_mobilenet_v2_320", "--batch-size", "2", "--checkpoint-every", "2", "--pretrained", "none"]


def squeeze_contrast(root: Path) -> Path:
    """Every JPEG under ``root`` with its pixels squeezed into 60..200: no black, no white (like
    BCCD's microscope slides, fog or night infrared)."""
    for path in root.rglob("*.jpg"):
        pixels = np.asarray(Image.open(path), np.float32)
        Image.fromarray((60 + pixels * 140 / 255).round().astype(np.uint8)).save(path, quality=95)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``livedroid train PHOTOS MINED`` on 15 low-contrast images, 3 steps; returns (root, the
    command's arguments, work dir, model dir)."""
    root = tmp_path_factory.mktemp("e2e")
    photos = make_voc_dataset(root / "photos", count=8)
    mined = make_mined_folder(root / "mined", {"a": "red", "b": "blue"}, frames=3)
    folder = LabellingFolder(mined)
    folder.save_image(AnnotatedImage("a-empty.jpg", "a-empty.jpg", width=96, height=72), jpeg(np.full((72, 96, 3), 128, np.uint8)))
    folder.append_records([{"image": "a-empty.jpg", "source": "/videos/a.mp4", "frame": 90, "reasons": ["novel"]}])
    folder.write_review_state("a-empty.jpg", "accepted")
    for part in (photos, mined):
        squeeze_contrast(part)
    work, model = root / "work", root / "models" / "merged"
    command = [str(photos), str(mined), "--out", str(model), "--work-dir", str(work), "--steps", "3",
               "--val-fraction", "0.25", *TINY, "--quantization", "float32", "int8", "--onnx"]
    assert main(command) == 0
    return root, command, work, model


def test_merged_low_contrast_folders_give_a_playable_model_in_every_format(trained):
    root, _, work, model = trained
    pixels = np.concatenate([np.asarray(Image.open(p)).ravel() for p in root.rglob("*.jpg") if "work" not in p.parts])
    assert pixels.min() > 40 and pixels.max() < 220  # nothing near black or white
    summary = json.loads((work / "dataset" / "dataset.json").read_text())
    assert summary["train"]["images"] + summary["val"]["images"] == 15 and summary["groups"]["by_source"] == 2
    assert summary["train"]["background"] + summary["val"]["background"] == 1  # trained on, or measured on

    assert (work / "training" / "ckpt-3.index").is_file() and (work / "training" / "ckpt-2.index").is_file()
    assert len((work / "training" / "train" / "losses.csv").read_text().splitlines()) == 4
    assert list((work / "training" / "train").glob("events.out.tfevents.*"))

    metrics = json.loads((model / "eval" / "metrics.json").read_text())
    assert set(metrics) >= {"mAP", "mAP@0.5", "per_class_AP", "images", "mistakes"}
    assert metrics["images"] == summary["val"]["images"]
    assert metrics["model"] == str(model / "model_int8.tflite")  # the deployed file is what eval measures
    objects = summary["val"]["images"] - summary["val"]["background"]  # one object on each other image
    assert sum(sum(row.values()) for row in metrics["mistakes"]["confusion"].values()) == objects
    assert set(metrics["per_class_AP"]) <= {"red", "blue"}
    card = (model / "MODEL_CARD.md").read_text()
    assert "validation photos" in card and "| annotated \\ found as |" in card and "livedroid train" in card
    for picture in ("contact_sheet.png", "loss_curve.png"):
        assert Image.open(model / "eval" / picture).size[0] > 300

    agreements = {a["variant"]: a for a in json.loads((model / "export.json").read_text())}
    assert set(agreements) == {"float32", "int8", "onnx"}
    for exact in ("float32", "onnx"):  # the same float graph: every SavedModel detection found again
        assert agreements[exact]["reference"] >= 2 and agreements[exact]["matched"] == agreements[exact]["reference"]

    from ai_edge_litert.interpreter import Interpreter

    from livedroid.detectors import load_detector
    from livedroid.labels import load_labels

    int8 = model / "model_int8.tflite"
    scale, zero_point = Interpreter(model_path=str(int8)).get_input_details()[0]["quantization"]
    assert scale == pytest.approx(2 / 255) and zero_point in (127, 128)  # raw pixels 0..255 onto [-1, 1]
    assert load_labels(model / "label_map.pbtxt") == {1: "blue", 2: "red"}
    image = np.asarray(Image.open(next((root / "photos" / "images").glob("*.jpg"))))
    assert not (model / "saved_model").exists()  # the model folder holds what livedroid run plays
    for path in (model / "model.tflite", int8, model / "model.onnx", work / "export"):
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


def test_the_same_command_again_resumes_at_the_first_step_not_done_then_eval_measures_it(trained, tmp_path, capsys):
    root, command, work, model = trained
    from livedroid.training.eval_cli import main as evaluate

    capsys.readouterr()
    assert main(command) == 0  # the same command again: nothing to redo
    out = capsys.readouterr().out
    assert f"prepare: done earlier ({work / 'dataset'}), fit: done (step 3 of 3)" in out and "nothing left to run" in out

    (model / "eval" / "metrics.json").unlink()  # as if eval had failed: only eval runs again
    assert main(command) == 0
    out = capsys.readouterr().out
    assert f"export: done earlier ({work / 'export'}); resuming at eval" in out and "== 3/4 export ==" not in out
    assert (model / "eval" / "metrics.json").is_file()

    assert evaluate([str(model), str(root / "mined"), "--out", str(tmp_path / "eval")]) == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["images"] == 7 and metrics["mistakes"]["background_images"] == 1


def test_fine_tune_from_a_served_zoo_archive_then_resume(trained, http_folder, tmp_path, monkeypatch, capsys):
    _, _, work, _ = trained
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
