"""The CSV of the classic TensorFlow object-detection tutorials (datitran's ``xml_to_csv.py``,
read by ``generate_tfrecord.py``): one box a row, ``filename,width,height,class,xmin,ymin,xmax,ymax``
in pixels. Datasets often ship their train/test split as two such files."""

from __future__ import annotations

import csv
from pathlib import Path

from livedroid.errors import UserError
from livedroid.training.dataset.annotations import AnnotatedImage, Box, Problem

COLUMNS = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")


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
            try:
                width, height = int(row["width"]), int(row["height"])
                corners = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
            except (TypeError, ValueError):
                problems.append(Problem(where, "size or box is not a number", "dropped box"))
                continue
            if name not in images:
                path = next((f / name for f in folders if (f / name).is_file()), folders[0] / name)
                images[name] = AnnotatedImage(where, Path(name).name, image_path=path, width=width, height=height)
            images[name].boxes.append(Box(row["class"].strip(), *corners))
    return list(images.values())
