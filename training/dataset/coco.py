"""COCO JSON annotations (``images``, ``annotations`` with ``[x, y, width, height]`` boxes,
``categories``)."""

from __future__ import annotations

import json
from pathlib import Path

from livedroid.errors import UserError
from livedroid.training.dataset.annotations import AnnotatedImage, Box, Problem


def is_coco_json(path: Path) -> bool:
    """Whether ``path`` is a JSON file with COCO's three top-level lists."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"images", "annotations", "categories"} <= data.keys()


def read_coco(json_path: Path, image_dir: Path | None, problems: list[Problem]) -> list[AnnotatedImage]:
    """Read a COCO file; images are looked up in ``image_dir``, else ``images/`` beside the
    JSON, else beside the JSON. Crowd annotations are kept as boxes (they mark real objects)."""
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
        categories = {c["id"]: c["name"] for c in data["categories"]}
        entries = {image["id"]: image for image in data["images"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{json_path}: not a readable COCO annotation file ({error})") from None
    folders = [image_dir] if image_dir else [json_path.parent / "images", json_path.parent]
    images = {}
    for image_id, entry in entries.items():
        name = entry.get("file_name", "")
        path = next((f / name for f in folders if (f / name).is_file()), folders[0] / name)
        images[image_id] = AnnotatedImage(
            source=f"{json_path.name} image id {image_id} ({name})",
            filename=Path(name).name,
            image_path=path,
            width=entry.get("width"),
            height=entry.get("height"),
        )
    for number, annotation in enumerate(data["annotations"]):
        where = f"{json_path.name} annotation {annotation.get('id', number)}"
        image = images.get(annotation.get("image_id"))
        category = categories.get(annotation.get("category_id"))
        bbox = annotation.get("bbox")
        if image is None:
            problems.append(Problem(where, f"unknown image_id {annotation.get('image_id')}", "dropped box"))
        elif category is None:
            problems.append(Problem(where, f"unknown category_id {annotation.get('category_id')}", "dropped box"))
        elif not (isinstance(bbox, list) and len(bbox) == 4):
            problems.append(Problem(where, f"bbox is {bbox!r}, expected [x, y, width, height]", "dropped box"))
        else:
            x, y, w, h = (float(v) for v in bbox)
            image.boxes.append(Box(category, x, y, x + w, y + h))
    return list(images.values())
