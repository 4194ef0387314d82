"""Class names for a model: Object Detection API ``label_map.pbtxt``, ``labelmap.txt``, or the
labels packed into a TFLite file's metadata.

Every loader returns ``{label-map id: name}`` with 1-based ids, the Object Detection API's
convention; TFLite detectors add 1 to their 0-based class outputs to meet it.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from livedroid.errors import UserError

# A label map item: ``item { id: 1 name: 'BB-8' display_name: "BB 8" }`` in any order and layout.
_ITEM = re.compile(r"item\s*\{(.*?)\}", re.S)
_FIELD = re.compile(r"(\w+)\s*:\s*(?:\"([^\"]*)\"|'([^']*)'|(-?\d+))")
# Placeholder first lines of TFLite label files: their line k then names label-map id k.
_BACKGROUND = {"???", "background", "__background__"}
# Names TFLite exporters give the label file packed into a model.
_PACKED_LABEL_FILES = ("labelmap.txt", "labels.txt", "label_map.txt")


def parse_label_map(text: str, source: str = "label map") -> dict[int, str]:
    """Parse label_map.pbtxt text; ``display_name`` wins over ``name`` when both are given."""
    labels: dict[int, str] = {}
    for number, item in enumerate(_ITEM.findall(_strip_comments(text)), start=1):
        fields = {m[0]: m[1] or m[2] or m[3] for m in _FIELD.findall(item)}
        if "id" not in fields or not fields["id"].lstrip("-").isdigit():
            raise UserError(f"{source}: item {number} has no numeric id")
        item_id = int(fields["id"])
        name = fields.get("display_name") or fields.get("name")
        if not name:
            raise UserError(f"{source}: item with id {item_id} has no name")
        if item_id < 1:
            raise UserError(f"{source}: id {item_id} of '{name}' must be 1 or more (0 is background)")
        if item_id in labels:
            raise UserError(
                f"{source}: id {item_id} is used twice ('{labels[item_id]}' and '{name}')"
            )
        labels[item_id] = name
    if not labels:
        raise UserError(f"{source}: no 'item {{ id: … name: … }}' entries found")
    return labels


def parse_label_lines(text: str) -> dict[int, str]:
    """Parse a one-name-a-line label file.

    With a placeholder first line (``???``, ``background``) line k names id k, as in TensorFlow's
    COCO ``labelmap.txt``; otherwise line k (from 0) names id k + 1. Blank lines keep their slot.
    """
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    offset = 0 if lines and lines[0] in _BACKGROUND else 1
    return {i + offset: name for i, name in enumerate(lines) if name and name not in _BACKGROUND}


def load_labels(path: str | Path) -> dict[int, str]:
    """Load labels from a ``.pbtxt`` label map or a text file with one name a line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"label file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read label file {path}: {error}") from None
    if path.suffix == ".pbtxt" or _ITEM.search(text):
        return parse_label_map(text, source=str(path))
    labels = parse_label_lines(text)
    if not labels:
        raise UserError(f"label file {path} is empty")
    return labels


def read_packed_labels(model_path: str | Path) -> dict[int, str] | None:
    """Labels packed into a TFLite file as a metadata associated file, or None.

    TFLite metadata stores associated files as a zip archive appended to the flatbuffer, so the
    standard zip reader finds them without the metadata schema.
    """
    try:
        with zipfile.ZipFile(model_path) as archive:
            names = {Path(n).name.lower(): n for n in archive.namelist()}
            for wanted in _PACKED_LABEL_FILES:
                if wanted in names:
                    return parse_label_lines(archive.read(names[wanted]).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError):
        return None
    return None


def find_labels(model_path: Path, explicit: str | Path | None = None) -> dict[int, str]:
    """The labels for a model: the ``--labels`` file, else packed in the model, else a label file
    beside it (``label_map.pbtxt``, ``labelmap.txt``, ``labels.txt``). Empty when none is found:
    detections are then named by their ids."""
    if explicit:
        return load_labels(explicit)
    if model_path.is_file():
        packed = read_packed_labels(model_path)
        if packed:
            return packed
    folder = model_path if model_path.is_dir() else model_path.parent
    for name in ("label_map.pbtxt", "labelmap.txt", "labels.txt"):
        if (folder / name).is_file():
            return load_labels(folder / name)
    return {}


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())
