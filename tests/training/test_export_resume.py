"""After ``fit`` nothing is lost: a rerun of the same command resumes at the first step not done,
and a failed TFLite variant says how to finish. (The training run that shows it end to end, on
low-contrast merged folders: test_end_to_end.py.)"""

from __future__ import annotations

import json

from livedroid.training.export import floats_first
from livedroid.training.resume import StepLog, with_quantization


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
