"""Class names for a model: Object Detection API ``label_map.pbtxt``, ``labelmap.txt``, an
Ultralytics data YAML (``names:``), or the labels packed into a TFLite file's metadata.

Every loader returns ``{label-map id: name}`` with 1-based ids, the Object Detection API's
convention; TFLite detectors add 1 to their 0-based class outputs to meet it, so YOLO class
index i is named by entry i of a 0-based ``names`` list.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import zipfile
from pathlib import Path

import yaml

from livedroid.coco import COCO_80, LABELMAP
from livedroid.errors import UserError

log = logging.getLogger(__name__)
# Warnings given in this process: a run loads one detector per worker and one to check labels.
_warned: set[str] = set()

# A label map item: ``item { id: 1 name: 'BB-8' display_name: "BB 8" }`` in any order and layout.
_ITEM = re.compile(r"item\s*\{(.*?)\}", re.S)
_FIELD = re.compile(r"""(\w+)\s*:\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(-?\d+))""")
# Text format's escapes in a quoted name: \" \' \\ \n \t, \xNN and \uNNNN.
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)")
_ESCAPED = {"n": "\n", "t": "\t", "r": "\r"}
# Placeholder first lines of TFLite label files: their line k then names label-map id k.
_BACKGROUND = {"???", "background", "__background__"}
# Names TFLite exporters give the label file packed into a model.
_PACKED_LABEL_FILES = ("labelmap.txt", "labels.txt", "label_map.txt")


def parse_label_map(text: str, source: str = "label map") -> dict[int, str]:
    """Parse label_map.pbtxt text; ``display_name`` wins over ``name`` when both are given."""
    labels: dict[int, str] = {}
    for number, item in enumerate(_ITEM.findall(_strip_comments(text)), start=1):
        fields = {m[0]: _unescape(m[1] or m[2]) or m[3] for m in _FIELD.findall(item)}
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


def format_label_map(labels: dict[int, str]) -> str:
    """``label_map.pbtxt`` text, the one writer of it (``prepare``, ``export``, ``mine``, ``review``):
    names double-quoted with text format's escapes, UTF-8 as is, so the Object Detection API and
    :func:`parse_label_map` read back the same names whatever they hold."""
    def quoted(name: str) -> str:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    return "".join(f"item {{\n  id: {i}\n  name: {quoted(name)}\n}}\n" for i, name in sorted(labels.items()))


def _unescape(text: str) -> str:
    def character(match: re.Match) -> str:
        escape = match[1]
        if escape[0] in "xu" and len(escape) > 1:
            return chr(int(escape[1:], 16))
        return _ESCAPED.get(escape, escape)

    return _ESCAPE.sub(character, text)


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


def parse_names(names: object, source: str) -> dict[int, str]:
    """Ultralytics' ``names`` (a list, or a mapping of 0-based class index → name) as label-map ids."""
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names:
        raise UserError(f"{source}: 'names' must be a list or a mapping of class index to name")
    try:
        return {int(index) + 1: str(name) for index, name in names.items()}
    except ValueError:
        raise UserError(f"{source}: 'names' keys must be class indices (0, 1, …)") from None


def load_labels(path: str | Path) -> dict[int, str]:
    """Load labels from a ``.pbtxt`` label map, a data ``.yaml`` with ``names:``, or a text file
    with one name a line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"label file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read label file {path}: {error}") from None
    if path.suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
        if not isinstance(data, dict) or "names" not in data:
            raise UserError(f"{path}: no 'names:' (an Ultralytics data YAML lists the class names there)")
        return parse_names(data["names"], str(path))
    if path.suffix == ".pbtxt" or _ITEM.search(text):
        return parse_label_map(text, source=str(path))
    labels = parse_label_lines(text)
    if not labels:
        raise UserError(f"label file {path} is empty")
    return labels


def read_packed_labels(model_path: str | Path) -> dict[int, str] | None:
    """Labels packed into a TFLite file as a metadata associated file, or None.

    TFLite metadata stores associated files as a zip archive appended to the flatbuffer, so the
    standard zip reader finds them without the metadata schema: a label file, or Ultralytics'
    metadata with ``names`` (``metadata.json``; older exports wrote a Python dict literal).
    """
    try:
        with zipfile.ZipFile(model_path) as archive:
            names = {Path(n).name.lower(): n for n in archive.namelist()}
            for wanted in _PACKED_LABEL_FILES:
                if wanted in names:
                    return parse_label_lines(archive.read(names[wanted]).decode("utf-8"))
            for name in names.values():
                metadata = parse_metadata(archive.read(name).decode("utf-8"))
                if isinstance(metadata, dict) and "names" in metadata:
                    return parse_names(metadata["names"], f"{model_path} ({name})")
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError):
        return None
    return None


def parse_metadata(text: str) -> object:
    """A JSON document or a Python literal, else None."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def labels_for_classes(labels: dict[int, str], classes: int | None, model: str) -> dict[int, str]:
    """The labels checked against the model's class count, where its outputs say it.

    No labels: COCO's names for 80 classes (Ultralytics' COCO order), COCO ids for 90 (class i is
    id i + 1) or 91 (class 0 is the background), with one warning. Labels whose highest id is not
    the class count would name the wrong boxes: a user error.
    """
    if classes is None:
        return labels
    if not labels:
        coco = parse_label_lines(LABELMAP)
        defaults = {80: {i + 1: name for i, name in enumerate(COCO_80)}, 90: coco,
                    91: {k + 1: name for k, name in coco.items()}}
        message = f"{model}: no labels found; naming its {classes} classes as COCO's (give --labels for others)"
        if classes in defaults and message not in _warned:
            _warned.add(message)
            log.warning(message)
        return defaults.get(classes, {})
    if max(labels) != classes:
        raise UserError(
            f"{model} outputs {classes} classes but its labels name {len(labels)} (ids up to {max(labels)}): "
            "give the labels the model was trained with (--labels)"
        )
    return labels


def find_labels(model_path: Path, explicit: str | Path | None = None) -> dict[int, str]:
    """The labels for a model: the ``--labels`` file, else packed in the model, else a label file
    beside it (``label_map.pbtxt``, ``labelmap.txt``, ``labels.txt``, Ultralytics' export
    ``metadata.yaml``). Empty when none is found: detections are then named by their ids."""
    if explicit:
        return load_labels(explicit)
    if model_path.is_file():
        packed = read_packed_labels(model_path)
        if packed:
            return packed
    folder = model_path if model_path.is_dir() else model_path.parent
    for name in ("label_map.pbtxt", "labelmap.txt", "labels.txt", "metadata.yaml"):
        if (folder / name).is_file():
            return load_labels(folder / name)
    return {}


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())
