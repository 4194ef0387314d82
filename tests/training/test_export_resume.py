"""After ``fit`` nothing is lost: low-contrast photos still give an int8 model, a rerun of the same
command resumes at the first step not done, and a failed TFLite variant says how to finish."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from livedroid.training.resume import StepLog, with_quantization
from tests.training.conftest import make_voc_dataset

TINY = ["--model", "ssd_mobilenet_v2_320", "--batch-size", "2", "--checkpoint-every", "2", "--pretrained", "none"]


def low_contrast_dataset(root: Path) -> Path:
    """The tiny VOC set with every pixel squeezed into 60..200: no black, no white (like BCCD's
    microscope slides, fog or night infrared)."""
    data = make_voc_dataset(root, count=8)
    for path in (data / "images").glob("*.jpg"):
        pixels = np.asarray(Image.open(path), np.float32)
        Image.fromarray((60 + pixels * 140 / 255).round().astype(np.uint8)).save(path, quality=95)
    return data


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


@pytest.mark.slow
def test_low_contrast_photos_give_an_int8_model_and_a_rerun_resumes(tmp_path, capsys):
    pytest.importorskip("object_detection", reason="the Object Detection API (pip install 'livedroid[train]') is not installed")
    from ai_edge_litert.interpreter import Interpreter

    from livedroid.detectors import load_detector
    from livedroid.training.cli import main

    data = low_contrast_dataset(tmp_path / "data")
    pixels = np.concatenate([np.asarray(Image.open(p)).ravel() for p in (data / "images").glob("*.jpg")])
    assert pixels.min() > 40 and pixels.max() < 220  # nothing near black or white
    work, model = tmp_path / "work", tmp_path / "models" / "dim"
    command = [str(data), "--out", str(model), "--work-dir", str(work), "--steps", "2", "--val-fraction", "0.25", *TINY]
    assert main(command) == 0, capsys.readouterr().err

    int8 = model / "model_int8.tflite"
    scale, zero_point = Interpreter(model_path=str(int8)).get_input_details()[0]["quantization"]
    assert scale == pytest.approx(2 / 255) and zero_point in (127, 128)  # raw pixels 0..255 onto [-1, 1]
    assert (work / "export" / "model_float16.tflite").is_file()  # the float model is written before int8
    image = np.asarray(Image.open(next((data / "images").glob("*.jpg"))))
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
