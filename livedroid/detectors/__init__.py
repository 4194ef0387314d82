"""Detector backends, registered by key and imported only when used.

As in Frigate's detector plugins, each backend is a small module; a backend whose optional
dependency is missing is reported in one line and does not affect the others.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from livedroid.detectors.base import Detector
from livedroid.errors import UserError

#: key → (module, class, what to install when its import fails)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "tflite": ("livedroid.detectors.tflite", "TFLiteDetector", "pip install ai-edge-litert"),
    "savedmodel": ("livedroid.detectors.savedmodel", "SavedModelDetector", "pip install 'livedroid[tf]'"),
    "onnx": ("livedroid.detectors.onnx_runtime", "OnnxDetector", "pip install 'livedroid[onnx]'"),
}
#: --device choices; only the onnx backend runs elsewhere than where its runtime puts it.
DEVICES = ("auto", "cpu", "cuda", "tensorrt", "openvino", "coreml")

__all__ = ["BACKENDS", "DEVICES", "Detector", "backend_for", "load_detector", "load_detectors", "plan_parallelism"]


def plan_parallelism(backend: str, workers: int | None, threads: int | None) -> tuple[int, int | None]:
    """(inference workers, threads per interpreter), filling in what the user left unset.

    TFLite: two interpreters in parallel, the cores shared between them. Measured on 2 cores with
    the default model (README, Performance): 2 workers x 1 thread reached the machine's limit,
    1 worker x 2 threads stayed 8% under it, as one interpreter idles while frames are decoded and
    encoded. ONNX Runtime on the CPU likewise (README, Performance: its rows). TensorFlow
    parallelises inside one model, so SavedModels get one worker.
    """
    cores = os.cpu_count() or 1
    shared_cores = backend in ("tflite", "onnx")
    if workers is None:
        workers = 2 if shared_cores and cores >= 2 else 1
    if threads is None and shared_cores:
        threads = max(1, cores // workers)
    return max(1, workers), threads


def backend_for(model: Path) -> str:
    """Pick the backend from the model's form: a ``.tflite`` or ``.onnx`` file, or a SavedModel folder."""
    if model.suffix == ".tflite":
        return "tflite"
    if model.suffix == ".onnx":
        return "onnx"
    if model.is_dir() and (model / "saved_model.pb").is_file():
        return "savedmodel"
    if model.is_dir() and (model / "saved_model" / "saved_model.pb").is_file():
        return "savedmodel"
    if model.is_dir():
        raise UserError(f"{model}: folder holds no saved_model.pb (expected a TensorFlow SavedModel)")
    raise UserError(f"{model}: unsupported model (give a .tflite or .onnx file, or a SavedModel folder)")


def load_detector(model: str | Path, backend: str | None = None, *, device: str | None = None, **options: object) -> Detector:
    """Load ``model`` with the named backend (or the one its form implies), on ``device`` (onnx only)."""
    model = Path(model)
    if not model.exists():
        raise UserError(f"model not found: {model}")
    key = backend or backend_for(model)
    if key not in BACKENDS:
        raise UserError(f"unknown backend '{key}' (choose from {', '.join(BACKENDS)})")
    if device not in (None, "auto", "cpu") and key != "onnx":
        raise UserError(f"--device {device} needs the onnx backend: give a .onnx model (the {key} backend picks its own device)")
    if key == "onnx":
        options["device"] = device
    module_name, class_name, install = BACKENDS[key]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        if (error.name or "").split(".")[0] == "livedroid":  # our own module missing: a packaging bug, not the user's
            raise
        raise UserError(f"the {key} backend is not installed ({error.name or error}): {install}") from None
    return getattr(module, class_name)(model, **options)


def load_detectors(
    model: str | Path,
    backend: str | None = None,
    *,
    workers: int | None = None,
    threads: int | None = None,
    batch: int = 1,
    labels: str | Path | None = None,
    device: str | None = None,
) -> list[Detector]:
    """The detector set of a run: one detector per inference worker, parallelism planned by
    :func:`plan_parallelism` for what the user left unset."""
    model = Path(model)
    workers, threads = plan_parallelism(backend or backend_for(model), workers, threads)
    return [
        load_detector(model, backend, device=device, labels=labels, threads=threads, batch=max(1, batch))
        for _ in range(workers)
    ]
