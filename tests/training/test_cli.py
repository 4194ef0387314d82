"""``livedroid train`` argument handling and error reporting (no training here)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from tests.training.conftest import make_voc_dataset
from livedroid.training.cli import main, run_command


@pytest.mark.parametrize("argv", [["--help"], ["prepare", "--help"], ["fit", "--help"], ["eval", "--help"], ["export", "--help"]])
def test_help_exits_zero(argv, capsys):
    assert main(argv) == 0
    assert "livedroid train" in capsys.readouterr().out


def test_prepare_through_the_cli(tmp_path, capsys):
    data = make_voc_dataset(tmp_path / "data")
    assert main(["prepare", str(data), "--out", str(tmp_path / "out"), "--val-fraction", "0.25", "--label-alias", "red=red"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^images +6 +2$", out, re.M), out  # the table's columns widen for a 'background' row
    assert "pre-flight for ssd_mobilenet_v2_300_coco_tf1" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["prepare", "missing", "--out", "x"], "livedroid: error: dataset not found: missing"),
        (["prepare", ".", "--out", "x", "--label-alias", "r2d2"], "expected NAME=LABEL"),
        (["eval", "--run", "nowhere"], "nowhere has no pipeline.config: run 'livedroid train fit' first"),
        (["fit", "--out", "nowhere"], "give --data"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_usage_error_exits_2(capsys):
    assert main(["prepare"]) == 2


def test_missing_training_extra_is_named(monkeypatch, capsys, tmp_path):
    import builtins

    real_import = builtins.__import__

    def without_tensorflow(name, *args, **kwargs):
        if name.split(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r}", name="tensorflow")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_tensorflow)
    monkeypatch.delitem(sys.modules, "livedroid.training.compat", raising=False)
    assert main(["prepare", str(make_voc_dataset(tmp_path / "d")), "--out", str(tmp_path / "o")]) == 2
    assert "needs tensorflow: pip install 'livedroid[train]'" in capsys.readouterr().err


def test_package_imports_without_tensorflow():
    code = "import sys, training.cli, training.fit, training.evaluate, training.export, training.dataset.prepare; print(any(m.startswith('tensorflow') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


@pytest.mark.parametrize("missing, extra_line", [("PIL", True), ("object_detection.builders", True), ("livedroid.training.gone", False), ("yaml", False)])
def test_only_the_extras_own_modules_read_as_a_missing_extra(capsys, missing, extra_line) -> None:
    def handler(args):
        raise ModuleNotFoundError(f"No module named '{missing}'", name=missing)

    parser = argparse.ArgumentParser()
    parser.set_defaults(handler=handler)
    if extra_line:
        assert run_command(parser, [], ["livedroid", "train"]) == 2
        assert capsys.readouterr().err == f"livedroid: error: 'livedroid train' needs {missing}: pip install 'livedroid[train]'\n"
    else:  # an internal import bug reaches livedroid's internal-error report, not a wrong hint
        with pytest.raises(ModuleNotFoundError):
            run_command(parser, [], ["livedroid", "train"])
