"""After ``fit`` nothing is lost: low-contrast photos still give an int8 model, a rerun of the same
command resumes at the first step not done, and a failed TFLite variant says how to finish. The
one training run here also carries a merged dataset through every stage and into ``eval``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from livedroid.annotations import AnnotatedImage
from livedroid.labelling.dataset import LabellingFolder
from livedroid.training.export import floats_first
from livedroid.training.resume import StepLog, with_quantization
from tests.conftest import needs_module
from tests.training.conftest import jpeg, make_mined_folder, make_voc_dataset

TINY = ["--model", "ssd_mobilenet_v2_320", "--batch-size", "2", "--checkpoint-every", "2", "--pretrained", "none"]


def squeeze_contrast(root: Path) -> Path:
    """Every JPEG under ``root`` with its pixels squeezed into 60..200: no black, no white (like
    BCCD's microscope slides, fog or night infrared)."""
    for path in root.rglob("*.jpg"):
        pixels = np.asarray(Image.open(path), np.float32)
        Image.fromarray((60 + pixels * 140 / 255).round().astype(np.uint8)).save(path, quality=95)
    return root


def test_a_step_runs_again_when_its_options_or_output_changed_and_so_do_the_later_ones(tmp_path, capsys):
    steps = ("prepare", "fit", "export")
    output = tmp_path / "out.txt"
    output.write_text("x")
    first = StepLog(tmp_path, steps)
    for step in steps:
        assert not first.can_skip(step, {"option": 1}, output)
        first.done(step, {"option": 1}, f"{step} summary")

    again = StepLog(tmp_path, steps)
    assert again.can_skip("prepare", {"option": 1}, output)
    assert not again.can_skip("fit", {"option": 2}, output)  # changed: runs, and so does export
    assert "prepare: prepare summary; resuming at fit" in capsys.readouterr().out
    assert not again.can_skip("export", {"option": 1}, output)
    assert set(json.loads((tmp_path / "steps.json").read_text())) == {"prepare"}

    output.unlink()
    assert not StepLog(tmp_path, steps).can_skip("prepare", {"option": 1}, output)  # its output is gone


def test_the_finishing_command_replaces_the_quantization_values():
    typed = ["livedroid", "train", "my data", "--out", "models/x", "--quantization", "float32", "int8", "--steps", "5"]
    assert with_quantization(typed, ["float32"]) == "livedroid train 'my data' --out models/x --steps 5 --quantization float32"
    assert with_quantization(typed[:5], ["float16"]) == "livedroid train 'my data' --out models/x --quantization float16"


def test_int8_alone_brings_a_float16_file_written_before_it():
    assert floats_first(("int8",)) == ("float16", "int8")  # a float file survives a failed int8
    assert floats_first(("int8", "float32")) == ("float32", "int8")
    assert floats_first(("float16", "float32")) == ("float32", "float16")


@pytest.mark.slow
def test_merged_low_contrast_folders_train_to_an_int8_model_that_resumes_and_evals(tmp_path, capsys):
    """``livedroid train PHOTOS MINED`` end to end (a few steps teach nothing: every stage must run
    and write what the next reads): a labelImg folder merged with a mined one holding a frame a
    reviewer accepted as empty (a background image); photos with no pixel under 40 or over 220
    still give an int8 model mapping 0..255 onto [-1, 1]; the same command again resumes; then
    ``livedroid eval`` of the model it wrote. (The command as typed, in a fresh process:
    test_readme_recipe.py.)"""
    needs_module("object_detection", "the Object Detection API (pip install 'livedroid[train]') is not installed")
    from ai_edge_litert.interpreter import Interpreter

    from livedroid.detectors import load_detector
    from livedroid.training.cli import main
    from livedroid.training.eval_cli import main as evaluate

    photos = make_voc_dataset(tmp_path / "photos", count=8)
    mined = make_mined_folder(tmp_path / "mined", {"a": "red", "b": "blue"}, frames=3)
    folder = LabellingFolder(mined)
    folder.save_image(AnnotatedImage("a-empty.jpg", "a-empty.jpg", width=96, height=72), jpeg(np.full((72, 96, 3), 128, np.uint8)))
    folder.append_records([{"image": "a-empty.jpg", "source": "/videos/a.mp4", "frame": 90, "reasons": ["novel"]}])
    folder.write_review_state("a-empty.jpg", "accepted")
    pixels = np.concatenate([np.asarray(Image.open(p)).ravel() for root in (photos, mined) for p in squeeze_contrast(root).rglob("*.jpg")])
    assert pixels.min() > 40 and pixels.max() < 220  # nothing near black or white
    work, model = tmp_path / "work", tmp_path / "models" / "merged"
    command = [str(photos), str(mined), "--out", str(model), "--work-dir", str(work), "--steps", "2", "--val-fraction", "0.25", *TINY]
    assert main(command) == 0, capsys.readouterr().err

    summary = json.loads((work / "dataset" / "dataset.json").read_text())
    assert summary["train"]["images"] + summary["val"]["images"] == 15 and summary["groups"]["by_source"] == 2
    assert summary["train"]["background"] + summary["val"]["background"] == 1  # trained on, or measured on
    int8 = model / "model_int8.tflite"
    scale, zero_point = Interpreter(model_path=str(int8)).get_input_details()[0]["quantization"]
    assert scale == pytest.approx(2 / 255) and zero_point in (127, 128)  # raw pixels 0..255 onto [-1, 1]
    assert (work / "export" / "model_float16.tflite").is_file()  # the float model is written before int8
    image = np.asarray(Image.open(next((photos / "images").glob("*.jpg"))))
    (found,) = load_detector(int8).detect([image])
    assert set(found.labels) <= {"blue", "red"}
    capsys.readouterr()

    assert main(command) == 0  # the same command again: nothing to redo
    out = capsys.readouterr().out
    assert f"prepare: done earlier ({work / 'dataset'}), fit: done (step 2 of 2)" in out and "nothing left to run" in out

    (model / "eval" / "metrics.json").unlink()  # as if eval had failed: only eval runs again
    assert main(command) == 0
    out = capsys.readouterr().out
    assert f"export: done earlier ({work / 'export'}); resuming at eval" in out and "== 3/4 export ==" not in out
    assert (model / "eval" / "metrics.json").is_file()

    assert evaluate([str(model), str(mined), "--out", str(tmp_path / "eval")]) == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["images"] == 7 and metrics["mistakes"]["background_images"] == 1
