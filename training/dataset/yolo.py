"""YOLO detection labels, as Ultralytics trains on them and Roboflow exports them.

A ``data.yaml`` names the classes (``names``: a list, or ids to names) and the images of each split
(``train``/``val``/``test``: folders, lists of folders or ``.txt`` lists of image files, relative to
``path`` or to the YAML). Beside every ``images`` folder a ``labels`` folder holds one ``.txt`` per
image, a line ``class cx cy w h`` per box, as fractions of the image size. Ultralytics lays this
out as ``images/train`` + ``labels/train``, Roboflow as ``train/images`` + ``train/labels``,
``valid/…``, ``test/…`` (with ``../train/images`` in its data.yaml). The older Darknet layout
(labelImg, CVAT's "YOLO 1.1") names the classes in ``classes.txt`` or ``obj.names`` instead. An
empty label file marks a background image; an image without one is unlabelled and left out.
"""

from __future__ import annotations

import math
from pathlib import Path

from typing import TYPE_CHECKING

import yaml

from livedroid.annotations import AnnotatedImage, Box, Problem
from livedroid.documents import MAX_FILE_BYTES, NoAliasLoader
from livedroid.errors import UserError

if TYPE_CHECKING:  # Pillow and the validator are the train extra's: review imports this module without them
    from livedroid.training.dataset.validate import CheckedImage

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".mpo"}
#: Class-name files of the Darknet layout, one name a line: labelImg's YOLO mode, CVAT's "YOLO 1.1".
NAMES_FILES = ("classes.txt", "obj.names")
#: Box edges this far past the image (as a fraction of its size) are rounding, clipped later; further
#: out, the labels are not normalised YOLO coordinates (pixels, another size) and are refused.
EDGE_TOLERANCE = 0.01


def find_data_yaml(folder: Path) -> Path | None:
    """The YAML file directly in ``folder`` that names classes and splits (``data.yaml`` first)."""
    candidates = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    candidates.sort(key=lambda path: path.stem != "data")
    return next((path for path in candidates if _dataset_config(path) is not None), None)


def is_data_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml") and path.is_file() and _dataset_config(path) is not None


def read_yolo(data_yaml: Path, problems: list[Problem]) -> list[AnnotatedImage]:
    """Every image of every split the YAML names, as one pool (livedroid's own split decides);
    the export's split is reported. UserError for labels that are not YOLO boxes of its classes."""
    config = _dataset_config(data_yaml)
    if config is None:
        raise UserError(f"{data_yaml}: not a YOLO dataset YAML (expected 'names' and 'train'/'val' image folders)")
    names = _class_names(config["names"], data_yaml)
    root = _dataset_root(config, data_yaml)
    split_images = {split: _split_images(config.get(split), root, data_yaml.parent) for split in SPLITS}
    split_images = {split: files for split, files in split_images.items() if files}
    if split_images:
        counts = ", ".join(f"{split} {len(files)}" for split, files in split_images.items())
        told = f"the export's split ({counts} images) is read as one pool; livedroid's own split decides (--val-fraction)"
    else:
        split_images = {"found": _layout_images(data_yaml.parent)}
        told = f"its {'/'.join(SPLITS)} paths name no images here: read every images/ folder with labels/ beside it"
    images = _read_images([path for files in split_images.values() for path in files], root, names, data_yaml, problems)
    print(f"{data_yaml}: {told}")
    return images


def find_names_file(folder: Path) -> Path | None:
    """The class-name file of a Darknet-layout folder (see :func:`read_darknet`)."""
    return next((path for name in NAMES_FILES for path in sorted(folder.rglob(name))), None)


def read_darknet(names_file: Path, problems: list[Problem]) -> list[AnnotatedImage]:
    """The Darknet layout of labelImg's YOLO mode and CVAT's "YOLO 1.1" export: the class names one
    a line in ``classes.txt`` or ``obj.names``, and every image in its folder (or in ``images/``
    beside the ``labels/`` folder holding the names) with its label file beside it or in ``labels/``."""
    names = class_names(names_file)
    root = names_file.parent.parent if names_file.parent.name == "labels" else names_file.parent
    files = sorted(path for path in root.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
    return _read_images(files, root, names, names_file, problems)


def class_names(names_file: Path) -> dict[int, str]:
    """The class ids and names of a ``data.yaml``, or of a ``classes.txt`` / ``obj.names`` (one a line)."""
    config = _dataset_config(names_file) if names_file.suffix.lower() in (".yaml", ".yml") else None
    if config is not None:
        return _class_names(config["names"], names_file)
    lines = names_file.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    return dict(enumerate(line.strip() for line in lines if line.strip()))


def _read_images(files: list[Path], root: Path, names: dict[int, str], names_file: Path, problems: list[Problem]) -> list[AnnotatedImage]:
    """The images of ``files`` that have a label file (once each), refused as a whole when a
    label is not a YOLO box of ``names``."""
    seen: set[Path] = set()
    images: list[AnnotatedImage] = []
    bad = _BadLabels(names_file, names)
    for image_path in files:
        if image_path.resolve() in seen:
            continue
        seen.add(image_path.resolve())
        label_path = label_path_of(image_path)
        if label_path.is_file():  # else unlabelled: prepare counts the images no annotation names
            images.append(_read_label_file(image_path, label_path, root, names, bad, problems))
    bad.refuse_if_any()
    if not images:
        raise UserError(f"{names_file}: no image has a label file (looked beside each image, and in labels/ for images/)")
    return images


def label_path_of(image_path: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder of the path becomes ``labels``, the suffix
    ``.txt``; an image outside any ``images`` folder has its labels beside it."""
    parts = list(image_path.parts)
    if "images" in parts[:-1]:
        index = len(parts) - 2 - parts[-2::-1].index("images")
        parts[index] = "labels"
    return Path(*parts).with_suffix(".txt")


def write_yolo(splits: dict[str, list[tuple[str, CheckedImage]]], label_map: dict[int, str], out_dir: Path) -> None:
    """Labels for images already written to ``out_dir/images/SPLIT/NAME`` and a ``data.yaml``
    Ultralytics trains on as it is (class ids are the label map's order, from 0)."""
    index = {name: number for number, name in enumerate(label_map[i] for i in sorted(label_map))}
    for split, named in splits.items():
        folder = out_dir / "labels" / split
        folder.mkdir(parents=True, exist_ok=True)
        for name, image in named:
            (folder / Path(name).with_suffix(".txt")).write_text(label_text(image.boxes, index, image.width, image.height), encoding="utf-8")
    config = {split: f"images/{split}" for split in splits}
    config.setdefault("val", config.get("train"))  # Ultralytics needs both; --val-fraction 0 made none
    config["names"] = {number: name for name, number in index.items()}
    (out_dir / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")


def label_text(boxes: list[Box], class_ids: dict[str, int], width: int, height: int) -> str:
    """A label file: a line ``class cx cy w h`` per box, as fractions of the image size (empty: background)."""
    return "".join(f"{class_ids[box.label]} {_normalised(box, width, height)}\n" for box in boxes)


def _normalised(box: Box, width: int, height: int) -> str:
    values = ((box.xmin + box.xmax) / 2 / width, (box.ymin + box.ymax) / 2 / height,
              (box.xmax - box.xmin) / width, (box.ymax - box.ymin) / height)
    return " ".join(f"{value:.6f}" for value in values)


class _BadLabels:
    """Lines that make the whole dataset suspect (a class the names lack, boxes past the image):
    collected over all files, then refused in one line with the first and a count."""

    def __init__(self, names_file: Path, names: dict[int, str]):
        self.names_file, self.names = names_file, names
        self.unknown_class: list[str] = []
        self.past_image: list[str] = []

    def refuse_if_any(self) -> None:
        listing = ", ".join(f"{i}: {name}" for i, name in sorted(self.names.items()))
        for found, what, fix in (
            (self.unknown_class, f"is not in {self.names_file.name}'s names ({listing})", f"fix the label files or add the class to {self.names_file.name}"),
            (self.past_image, "reaches past the image (YOLO coordinates are fractions 0-1 of its size)", "fix the label files (pixel coordinates must be divided by the image size)"),
        ):
            if found:
                more = f" (and {len(found) - 1} more line(s) like it)" if len(found) > 1 else ""
                raise UserError(f"{found[0]} {what}{more}: {fix}")


def _read_label_file(
    image_path: Path, label_path: Path, root: Path, names: dict[int, str], bad: _BadLabels, problems: list[Problem]
) -> AnnotatedImage:
    from PIL import Image  # the train extra's; review without it says so in one line

    where = _relative(label_path, root)
    try:
        with Image.open(image_path) as picture:
            width, height = picture.size
    except OSError:  # the validator reports the unreadable image and drops it
        return AnnotatedImage(where, image_path.name, image_path=image_path)
    boxes, dropped = [], 0
    for number, line in enumerate(label_path.read_text(encoding="utf-8-sig", errors="replace").splitlines(), start=1):
        if not line.split():
            continue
        at, parsed = f"{where} line {number}", _parse_line(line.split())
        if isinstance(parsed, str):
            problems.append(Problem(at, f"{line.strip()!r} {parsed}", "dropped box"))
            dropped += 1
            continue
        class_id, corners = parsed
        if class_id not in names:
            bad.unknown_class.append(f"{at}: class {class_id}")
        elif min(corners) < -EDGE_TOLERANCE or max(corners) > 1 + EDGE_TOLERANCE:
            bad.past_image.append(f"{at}: box {' '.join(line.split()[1:5])}")
        else:
            x0, y0, x1, y1 = (min(max(corner, 0.0), 1.0) for corner in corners)  # within the tolerance: rounding
            boxes.append(Box(names[class_id], x0 * width, y0 * height, x1 * width, y1 * height))
    return AnnotatedImage(where, image_path.name, boxes, image_path=image_path, width=width, height=height, boxes_dropped=dropped)


def _parse_line(fields: list[str]) -> tuple[int, tuple[float, float, float, float]] | str:
    """The class id and box corners (fractions) of one label line, or what is wrong with it."""
    try:
        values = [float(field) for field in fields]
    except ValueError:
        return "is not numbers: class cx cy w h"
    if not all(map(math.isfinite, values)) or not values[0].is_integer():
        return "is not a class id and finite coordinates"
    corners = _corners(values[1:])
    if corners is None:
        return f"has {len(values)} numbers, expected class cx cy w h (or a class and polygon points)"
    return int(values[0]), corners


def _corners(coordinates: list[float]) -> tuple[float, float, float, float] | None:
    """``cx cy w h`` or a segmentation polygon ``x1 y1 x2 y2 …`` (its bounding box) → corners."""
    if len(coordinates) == 4:
        cx, cy, w, h = coordinates
        return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    if len(coordinates) >= 6 and len(coordinates) % 2 == 0:
        xs, ys = coordinates[0::2], coordinates[1::2]
        return min(xs), min(ys), max(xs), max(ys)
    return None


def _dataset_config(path: Path) -> dict | None:
    """The YAML's content when it describes a dataset; None for any other (or unsafe) YAML file."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if isinstance(config, dict) and "names" in config and any(split in config for split in SPLITS):
        return config
    return None


def _class_names(names: object, data_yaml: Path) -> dict[int, str]:
    try:
        if isinstance(names, list):
            return {i: str(name) for i, name in enumerate(names)}
        if isinstance(names, dict):
            return {int(i): str(name) for i, name in names.items()}
    except (TypeError, ValueError):
        pass
    raise UserError(f"{data_yaml}: 'names' must be a list of class names or a mapping of class ids to names, got {names!r}")


def _dataset_root(config: dict, data_yaml: Path) -> Path:
    """``path`` when it exists (absolute, or relative to the YAML), else the YAML's folder."""
    if config.get("path"):
        root = Path(str(config["path"]))
        root = root if root.is_absolute() else data_yaml.parent / root
        if root.is_dir():
            return root
    return data_yaml.parent


def _split_images(entry: object, root: Path, yaml_folder: Path) -> list[Path]:
    """The images of one split entry: a folder, a ``.txt`` list of images, or a list of these.
    Roboflow writes ``../train/images`` although its folders sit beside data.yaml: a path not
    found as written is looked for without its leading ``../``."""
    if not entry:
        return []
    files: list[Path] = []
    for item in entry if isinstance(entry, list) else [entry]:
        written = Path(str(item))
        candidates = [written] if written.is_absolute() else [
            root / written, yaml_folder / written, yaml_folder / Path(*[part for part in written.parts if part != ".."])
        ]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            continue
        if found.is_dir():
            files += sorted(p for p in found.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        else:
            listed = [line.strip() for line in found.read_text(encoding="utf-8").splitlines() if line.strip()]
            files += [p if p.is_absolute() else found.parent / p for p in map(Path, listed)]
    return files


def _layout_images(folder: Path) -> list[Path]:
    """Images under any ``images`` folder that has a ``labels`` folder beside it."""
    return sorted(
        p for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and "images" in p.parts[len(folder.parts):]
        and label_path_of(p).parent.is_dir()
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)

