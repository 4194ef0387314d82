"""Label Studio's JSON export: a list of tasks, each with ``data.image`` (the URL Label Studio
served, e.g. ``/data/upload/1/3f2a9c1e-photo.jpg``: an upload gets an 8-hex-digit prefix) and
``annotations[].result[]`` whose ``rectanglelabels`` items hold ``x, y, width, height`` in percent
of ``original_width``/``original_height``, rotated ``rotation`` degrees about their top-left corner.

The export holds no images: they are found by file name (with or without the upload prefix) in
``--images``, else beside the JSON or in ``images/`` there. A task without an annotation is
unlabelled and left out; an annotation with no rectangle is a background image.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from livedroid.annotations import AnnotatedImage, Box, Problem
from livedroid.errors import UserError

_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def is_label_studio_json(path: Path) -> bool:
    """Whether ``path`` is a JSON list of tasks with ``data`` and ``annotations``."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(tasks, list) and bool(tasks) and all(isinstance(t, dict) and "data" in t and "annotations" in t for t in tasks)


def read_label_studio(json_path: Path, image_dir: Path | None, problems: list[Problem]) -> list[AnnotatedImage]:
    """One AnnotatedImage per annotated task (its first annotation not cancelled)."""
    try:
        tasks = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"{json_path}: not a readable Label Studio export ({error})") from None
    folders = [image_dir] if image_dir else [json_path.parent, json_path.parent / "images"]
    images, found = [], 0
    for number, task in enumerate(tasks):
        where = f"{json_path.name} task {task.get('id', number)}"
        url = image_url(task.get("data"))
        annotation = annotation_of(task)
        if url is None:
            problems.append(Problem(where, "no image in its data", "dropped image"))
            continue
        if annotation is None:
            continue  # unlabelled: prepare counts the images no annotation names
        candidates = [folder / name for name in _file_names(url) for folder in folders]
        image_path = next((path for path in candidates if path.is_file()), candidates[0])
        found += image_path.is_file()
        image = AnnotatedImage(f"{where} ({image_path.name})", image_path.name, image_path=image_path)
        for result in annotation.get("result") or []:
            add_box(image, result, problems)
        images.append(image)
    if images and not found:
        looked = " or ".join(str(folder) for folder in folders)
        fix = "--images names another folder" if image_dir else "pass --images with the folder of the images you imported into Label Studio"
        raise UserError(f"{json_path}: none of its {len(images)} images (e.g. {images[0].filename}) is in {looked}: {fix}")
    return images


def annotation_of(task: dict) -> dict | None:
    """The annotation read of a task: its first one not cancelled; None for an unlabelled task."""
    return next((a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")), None)


def add_box(image: AnnotatedImage, result: dict, problems: list[Problem]) -> None:
    """Append the box of one ``rectanglelabels`` result; other result types are noted."""
    if not isinstance(result, dict) or result.get("type") != "rectanglelabels":
        kind = result.get("type") if isinstance(result, dict) else type(result).__name__
        problems.append(Problem(image.source, f"a {kind} result left out: only rectangles are read", "note"))
        return
    value = result.get("value") or {}
    try:
        width, height = float(result["original_width"]), float(result["original_height"])
        x, y, w, h = (float(value[key]) / 100 for key in ("x", "y", "width", "height"))
        rotation = float(value.get("rotation") or 0)
        label = str((value.get("rectanglelabels") or [""])[0])
    except (KeyError, TypeError, ValueError, IndexError):
        problems.append(Problem(image.source, f"rectangle {result.get('id', '')} lacks numbers or its image size", "dropped box"))
        image.boxes_dropped += 1
        return
    if not all(map(math.isfinite, (width, height, x, y, w, h, rotation))):
        problems.append(Problem(image.source, f"rectangle {result.get('id', '')} has a coordinate that is not finite", "dropped box"))
        image.boxes_dropped += 1
        return
    image.width, image.height = int(width), int(height)
    if rotation:
        problems.append(Problem(image.source, f"rectangle {result.get('id', '')} rotated {rotation:g}°: its upright hull is used", "note"))
    left, top, w, h = x * width, y * height, w * width, h * height
    turn = math.radians(rotation)
    corners = [(left + dx * math.cos(turn) - dy * math.sin(turn), top + dx * math.sin(turn) + dy * math.cos(turn))
               for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    image.boxes.append(Box(label, min(xs), min(ys), max(xs), max(ys)))


def image_url(data: object) -> str | None:
    """``data.image``, else the task's only string value (a labelling config may name it otherwise)."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("image"), str):
        return data["image"]
    strings = [value for value in data.values() if isinstance(value, str)]
    return strings[0] if len(strings) == 1 else None


def _file_names(url: str) -> list[str]:
    """The file names an image URL may stand for: its own, and without the upload prefix. Local
    storage URLs carry the path in ``?d=``."""
    parsed = urlparse(url)
    path = parse_qs(parsed.query).get("d", [parsed.path])[0]
    name = Path(unquote(path)).name
    stripped = _UPLOAD_PREFIX.sub("", name)
    return [name, stripped] if stripped != name else [name]
