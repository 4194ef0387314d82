"""The CSV of the classic TensorFlow object-detection tutorials (datitran's ``xml_to_csv.py``,
read by ``generate_tfrecord.py``): one box a row, ``filename,width,height,class,xmin,ymin,xmax,ymax``
in pixels. Datasets often ship their train/test split as two such files. A row whose class and
box are empty annotates its image as holding no object (a background image)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from livedroid.annotations import AnnotatedImage, Box, Problem
from livedroid.errors import UserError

COLUMNS = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")
_BOX_COLUMNS = ("class", "xmin", "ymin", "xmax", "ymax")


def is_labels_csv(path: Path) -> bool:
    """Whether ``path`` is a CSV file whose header has the tutorial's columns."""
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    with open(path, newline="", encoding="utf-8") as stream:
        header = next(csv.reader(stream), [])
    return set(COLUMNS) <= {column.strip() for column in header}


def read_labels_csv(csv_path: Path, image_dir: Path | None, problems: list[Problem]) -> list[AnnotatedImage]:
    """One AnnotatedImage per file name, in first-seen order; images are looked up in
    ``image_dir``, else ``images/`` beside the CSV or beside its folder, else beside the CSV."""
    if not is_labels_csv(csv_path):
        raise UserError(f"{csv_path}: not a labels CSV (expected the columns {','.join(COLUMNS)})")
    folders = [image_dir] if image_dir else [csv_path.parent / "images", csv_path.parent.parent / "images", csv_path.parent]
    images: dict[str, AnnotatedImage] = {}
    with open(csv_path, newline="", encoding="utf-8") as stream:
        for line, row in enumerate(csv.DictReader(stream), start=2):
            name = (row.get("filename") or "").strip()
            where = f"{csv_path.name} line {line}"
            if name not in images:
                path = next((f / name for f in folders if (f / name).is_file()), folders[0] / name)
                width, height = (_size(row, column, where, problems) for column in ("width", "height"))
                images[name] = AnnotatedImage(where, Path(name).name, image_path=path, width=width, height=height)
            values = [(row.get(k) or "").strip() for k in _BOX_COLUMNS]
            if not any(values):
                continue  # a row without a box: the image is annotated as holding no object
            try:
                corners = [float(v) for v in values[1:]]
            except ValueError:
                corners = []
            if values[0] and len(corners) == 4 and all(map(math.isfinite, corners)):
                images[name].boxes.append(Box(values[0], *corners))
            else:
                problems.append(Problem(where, f"box {','.join(values)} is not a class and four finite numbers", "dropped box"))
                images[name].boxes_dropped += 1
    return list(images.values())


def _size(row: dict, column: str, where: str, problems: list[Problem]) -> int | None:
    """The recorded size; None, with a note, when it is not a positive whole number (the
    validator then takes the image's own size)."""
    text = (row.get(column) or "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    problems.append(Problem(where, f"{column} is {text!r}, not a size in pixels; the image's own size is used", "note"))
    return None
