"""Where ``--model`` names are looked up, and the default model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from livedroid.errors import UserError

DEFAULT_MODEL = "coco-ssd-mobilenet-v2"
#: Preferred file of a model folder, in order.
_MODEL_FILES = ("detect.tflite", "model_int8.tflite", "model.tflite", "saved_model")


def model_dirs() -> list[Path]:
    """``$LIVEDROID_MODELS`` (colon-separated), ``./models``, the repository's ``models/`` (an
    editable install), then ``<prefix>/share/livedroid/models`` (where a wheel puts them)."""
    dirs = [Path(p) for p in os.environ.get("LIVEDROID_MODELS", "").split(os.pathsep) if p]
    dirs += [
        Path.cwd() / "models",
        Path(__file__).resolve().parents[1] / "models",
        Path(sys.prefix) / "share" / "livedroid" / "models",
    ]
    return list(dict.fromkeys(dirs))


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
        known = sorted({p.name for d in model_dirs() if d.is_dir() for p in d.iterdir() if p.is_dir()})
        raise UserError(f"model '{spec}' not found (known names: {', '.join(known) or 'none'}; or give a path)")
    if any((folder / path.name).is_dir() for folder in model_dirs()):
        raise UserError(f"model not found: {spec} (from {Path.cwd()}); the shipped model is named: -m {path.name}")
    raise UserError(f"model not found: {spec}")


def _pick_file(folder: Path) -> Path:
    for name in _MODEL_FILES:
        if (folder / name).exists():
            return folder / name
    tflites = sorted(folder.glob("*.tflite"))
    if tflites:
        return tflites[0]
    raise UserError(f"{folder}: no .tflite file or saved_model folder inside")
