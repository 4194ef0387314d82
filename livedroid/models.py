"""Where ``--model`` names are looked up, and the default model."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from livedroid.errors import UserError

DEFAULT_MODEL = "coco-ssd-mobilenet-v2"
#: Preferred file of a model folder, in order.
_MODEL_FILES = ("detect.tflite", "model_int8.tflite", "model.tflite", "saved_model")


def model_dirs() -> list[Path]:
    """``$LIVEDROID_MODELS`` (colon-separated), ``./models``, then the shipped models: package data
    of ``livedroid.shipped_models`` (the repository's ``models/``), found through
    ``importlib.resources`` wherever the install scheme put the package (venv, ``--user``, system)."""
    dirs = [Path(p) for p in os.environ.get("LIVEDROID_MODELS", "").split(os.pathsep) if p]
    dirs.append(Path.cwd() / "models")
    dirs.extend(_shipped_dirs())
    return list(dict.fromkeys(dirs))


def _shipped_dirs() -> list[Path]:
    """The folder(s) of the data-only package ``livedroid.shipped_models`` (a namespace package:
    one folder in a wheel, the repository's ``models/`` in an editable install)."""
    try:
        root = importlib.resources.files("livedroid.shipped_models")
    except ModuleNotFoundError:  # run from a source tree that was never installed
        return [Path(__file__).resolve().parents[1] / "models"]
    return list(dict.fromkeys(Path(str(model)).parent for model in root.iterdir()))


def resolve_model(spec: str | None) -> Path:
    """A model path as given, or a model name (a folder in ``model_dirs()``) resolved to its file."""
    spec = spec or DEFAULT_MODEL
    path = Path(spec)
    if path.exists():
        return _pick_file(path) if path.is_dir() and not (path / "saved_model.pb").is_file() else path
    if "/" not in spec and os.sep not in spec and not path.suffix:
        for folder in model_dirs():
            if (folder / spec).is_dir():
                return _pick_file(folder / spec)
        known = sorted({p.name for d in model_dirs() if d.is_dir() for p in d.iterdir() if _is_model_folder(p)})
        raise UserError(f"model '{spec}' not found (known names: {', '.join(known) or 'none'}; or give a path)")
    if any((folder / path.name).is_dir() for folder in model_dirs()):
        raise UserError(f"model not found: {spec} (from {Path.cwd()}); the shipped model is named: -m {path.name}")
    raise UserError(f"model not found: {spec}")


def _is_model_folder(path: Path) -> bool:
    return path.is_dir() and (any((path / name).exists() for name in _MODEL_FILES) or any(path.glob("*.tflite")))


def _pick_file(folder: Path) -> Path:
    for name in _MODEL_FILES:
        if (folder / name).exists():
            return folder / name
    tflites = sorted(folder.glob("*.tflite"))
    if tflites:
        return tflites[0]
    raise UserError(f"{folder}: no .tflite file or saved_model folder inside")
