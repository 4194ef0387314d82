"""COCO JSON annotations (``images``, ``annotations`` with ``[x, y, width, height]`` boxes,
``categories``): the reader ``prepare`` uses, and the one writer (a labelling folder's
``coco.json``, ``train convert --to coco``). An image listed without annotations is a background
image."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from livedroid.annotations import AnnotatedImage, Box, Problem
from livedroid.errors import UserError


class BoxedImage(Protocol):
    """What the writer needs of an image: an annotated one, or one ``prepare`` checked."""

    width: int | None
    height: int | None
    boxes: list[Box]


def is_coco_json(path: Path) -> bool:
    """Whether ``path`` is a JSON file with COCO's three top-level lists."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"images", "annotations", "categories"} <= data.keys()


def image_folders(json_path: Path) -> list[Path]:
    """Where a COCO file's images may be: ``images/`` beside it, beside it (Roboflow's layout),
    and for a file in ``annotations/`` (CVAT's and COCO's own layouts) ``images/SUBSET``,
    ``images/`` or ``SUBSET/`` beside that folder, SUBSET being its name after ``instances_``."""
    folders = [json_path.parent / "images", json_path.parent]
    if json_path.parent.name == "annotations":
        subset = json_path.stem.removeprefix("instances_")
        root = json_path.parent.parent
        folders += [root / "images" / subset, root / "images", root / subset]
    return folders


def are_split_files(paths: list[Path]) -> bool:
    """Whether several COCO files are the splits of one export, read as one pool: Roboflow's
    ``train/_annotations.coco.json``, ``valid/…``, or ``annotations/instances_SUBSET.json``
    (CVAT's subsets, COCO's own ``instances_train2017.json``…) in one folder."""
    roboflow = all(path.name == "_annotations.coco.json" for path in paths)
    instances = all(path.stem.startswith("instances_") for path in paths) and len({path.parent for path in paths}) == 1
    return roboflow or instances


def read_coco(json_path: Path, image_dir: Path | None, problems: list[Problem]) -> list[AnnotatedImage]:
    """Read a COCO file; images are looked up in ``image_dir``, else in :func:`image_folders`. Crowd annotations are kept as boxes (they mark real objects)."""
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
        categories = {c["id"]: c["name"] for c in data["categories"]}
        entries = {image["id"]: image for image in data["images"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{json_path}: not a readable COCO annotation file ({error})") from None
    folders = [image_dir] if image_dir else image_folders(json_path)
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
        if not isinstance(annotation, dict):
            problems.append(Problem(f"{json_path.name} annotation {number}", f"is {annotation!r}, not an object", "dropped box"))
            continue
        where = f"{json_path.name} annotation {annotation.get('id', number)}"
        image = images.get(annotation.get("image_id"))
        category = categories.get(annotation.get("category_id"))
        bbox = annotation.get("bbox")
        if image is None:
            problems.append(Problem(where, f"unknown image_id {annotation.get('image_id')}", "dropped box"))
            continue
        if category is None:
            problems.append(Problem(where, f"unknown category_id {annotation.get('category_id')}", "dropped box"))
        elif not is_bbox(bbox):
            problems.append(Problem(where, f"bbox is {json.dumps(bbox)}, expected [x, y, width, height] of finite numbers", "dropped box"))
        else:
            x, y, w, h = (float(v) for v in bbox)
            image.boxes.append(Box(category, x, y, x + w, y + h))
            continue
        image.boxes_dropped += 1
    return list(images.values())


def is_bbox(bbox: object) -> bool:
    """Four finite numbers (JSON's null, strings and booleans are not; NaN parses, but is not)."""
    return (
        isinstance(bbox, list) and len(bbox) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)
    )


def coco_json(named: Sequence[tuple[str, BoxedImage]], label_map: dict[int, str]) -> str:
    """A COCO detection file of images under their file names (:func:`coco_document`)."""
    return json.dumps(coco_document(named, label_map), indent=1) + "\n"


def coco_document(named: Sequence[tuple[str, BoxedImage]], label_map: dict[int, str]) -> dict:
    """COCO's images, annotations and categories; image ids count from 1 in order, category ids
    are the label map's, a box whose label it lacks is left out."""
    category_ids = {name: number for number, name in label_map.items()}
    images, annotations = [], []
    for image_id, (name, image) in enumerate(named, start=1):
        images.append({"id": image_id, "file_name": name, "width": image.width, "height": image.height})
        annotations += [coco_annotation(len(annotations) + number, image_id, category_ids[box.label], box)
                        for number, box in enumerate((b for b in image.boxes if b.label in category_ids), start=1)]
    categories = [{"id": number, "name": name, "supercategory": ""} for number, name in sorted(label_map.items())]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_annotation(annotation_id: int, image_id: int, category_id: int, box: Box) -> dict:
    """One COCO annotation of ``box``: ``bbox`` is ``[x, y, width, height]`` in pixels."""
    width, height = box.xmax - box.xmin, box.ymax - box.ymin
    return {
        "id": annotation_id, "image_id": image_id, "category_id": category_id,
        "bbox": [round(v, 2) for v in (box.xmin, box.ymin, width, height)], "area": round(width * height, 2), "iscrowd": 0,
    }


def write_coco(splits: dict[str, Sequence[tuple[str, BoxedImage]]], label_map: dict[int, str], out_dir: Path) -> None:
    """``annotations/instances_SPLIT.json`` for images already written to ``out_dir/images/SPLIT/NAME``
    (the layout of CVAT's COCO export)."""
    (out_dir / "annotations").mkdir(parents=True, exist_ok=True)
    for split, named in splits.items():
        (out_dir / "annotations" / f"instances_{split}.json").write_text(coco_json(named, label_map), encoding="utf-8")
