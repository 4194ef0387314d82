"""The runtime-only install as a Raspberry Pi gets it: a wheel in a fresh venv with no extras (no
TensorFlow, no Pillow), used from a folder that is not the repository, and the README's install
table checked against pyproject.toml."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO, write_clip

pytestmark = pytest.mark.slow


def _run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return subprocess.run(command, cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory) -> tuple[Path, Path]:
    """(python of a fresh venv holding livedroid's wheel and its runtime dependencies only, the wheel)."""
    root = tmp_path_factory.mktemp("install")
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(root / "wheels"), str(REPO)], root)
    assert built.returncode == 0, built.stderr[-2000:]
    # a data folder missing from pyproject's packages builds with a warning, and a later setuptools drops it
    assert "absent from the `packages` configuration" not in built.stderr, built.stderr[-2000:]
    wheel = next((root / "wheels").glob("livedroid-*.whl"))
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    installed = _run([str(python), "-m", "pip", "install", "-q", str(wheel)], root)
    assert installed.returncode == 0, installed.stderr[-2000:]
    return python, wheel


def test_the_runtime_install_has_neither_tensorflow_nor_pillow(runtime_venv, tmp_path):
    python, _ = runtime_venv
    for module in ("tensorflow", "PIL", "object_detection"):
        found = _run([str(python), "-c", f"import {module}"], tmp_path)
        assert found.returncode != 0, f"{module} is installed: the test would not be the Raspberry Pi's case"


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--help"],
        ["train", "prepare", "--help"],
        ["train", "fit", "--help"],
        ["train", "eval", "--help"],
        ["train", "export", "--help"],
        ["eval", "--help"],
        ["import-zoo", "--help"],
        ["import-zoo-checkpoint", "--help"],
    ],
)
def test_help_works_without_the_training_extra(runtime_venv, tmp_path, command):
    python, _ = runtime_venv
    result = _run([str(python), "-m", "livedroid", *command], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: livedroid"), result.stdout[:200]
    assert result.stderr == ""


def test_a_training_step_names_the_extra_in_one_line(runtime_venv, tmp_path):
    python, _ = runtime_venv
    data = tmp_path / "photos"
    data.mkdir()
    result = _run([str(python), "-m", "livedroid", "train", str(data), "--out", str(tmp_path / "model")], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "livedroid: error: 'livedroid train' needs PIL: pip install 'livedroid[train]'"
    ]


@pytest.mark.parametrize("scheme", ["venv", "--target"])
def test_the_default_model_is_found_from_any_folder_in_any_install_scheme(runtime_venv, tmp_path, scheme):
    """``--target`` (like ``--user``) puts the package where the data scheme is not ``sys.prefix``:
    before the models were package data, that install found no model at all."""
    python, wheel = runtime_venv
    env = {}
    if scheme == "--target":
        target = tmp_path / "target"
        installed = _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)], tmp_path)
        assert installed.returncode == 0, installed.stderr[-2000:]
        env["PYTHONPATH"] = str(target)
    clip = write_clip(tmp_path / "clip.mp4", frames=5)
    away = tmp_path / "elsewhere"
    away.mkdir()
    result = _run([str(python), "-m", "livedroid", "run", str(clip), "-o", str(tmp_path / "out.mp4")], away, **env)
    assert result.returncode == 0, result.stderr[-2000:]
    model_line = next(line for line in result.stderr.splitlines() if line.startswith("livedroid: model "))
    expected = (target if scheme == "--target" else python.parents[1]).resolve()
    assert f"{expected}" in model_line and "coco-ssd-mobilenet-v2/detect.tflite" in model_line, model_line
    assert (tmp_path / "out.mp4").stat().st_size > 0
    by_name = _run([str(python), "-m", "livedroid", "run", str(clip), "-m", "star-wars", "-o", str(tmp_path / "sw.mp4")], away, **env)
    assert by_name.returncode == 0, by_name.stderr[-2000:]


def _requirement_names(requirements: list[str]) -> list[str]:
    return [re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower() for requirement in requirements]


def test_the_readme_install_table_names_every_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    rows = {}
    for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| .+? \| `pip install -e (\.|'\.\[(\w+)\]')` \| (.+) \|$", line)
        if match:
            rows[match.group(2) or "runtime"] = match.group(3).lower()
    wanted = {"runtime": project["dependencies"], **project["optional-dependencies"]}
    assert set(wanted) <= set(rows), f"README's install table lacks rows for {sorted(set(wanted) - set(rows))}"
    missing = {
        extra: [name for name in _requirement_names(requirements) if name not in rows[extra]]
        for extra, requirements in wanted.items()
    }
    assert not any(missing.values()), f"README's install table omits {missing}"


def test_an_onnx_model_without_the_onnx_extra_is_one_line_naming_it(runtime_venv, tmp_path):
    """The file need not be a real model: the backend's import fails before it is read."""
    python, _ = runtime_venv
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07")
    clip = write_clip(tmp_path / "clip.mp4", frames=2)
    result = _run([str(python), "-m", "livedroid", "run", str(clip), "-m", str(tmp_path / "model.onnx")], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "livedroid: error: the onnx backend is not installed (onnxruntime): pip install 'livedroid[onnx]'"
    ]
