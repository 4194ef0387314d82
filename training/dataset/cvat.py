"""CVAT's "CVAT for images 1.1" export: one ``annotations.xml`` (root ``<annotations>``) with an
``<image name width height>`` per image holding ``<box label xtl ytl xbr ybr>`` in pixels; the
images come in ``images/`` beside it. CVAT lists every image of the task, so an image without
boxes is a background image. Other shapes (polygons, points, masks…) are not boxes: reported."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from livedroid.annotations import AnnotatedImage, Box, Problem
from livedroid.errors import UserError

EXPORT_FILE = "annotations.xml"
_OTHER_SHAPES = ("polygon", "polyline", "points", "ellipse", "mask", "cuboid", "skeleton")


def is_cvat_xml(path: Path) -> bool:
    """Whether ``path`` is an XML file whose root element is ``<annotations>`` (read to it only)."""
    if path.suffix.lower() != ".xml" or not path.is_file():
        return False
    try:
        for _, element in ET.iterparse(path, events=("start",)):
            return element.tag == "annotations"
    except (ET.ParseError, OSError):
        return False
    return False


def read_cvat(xml_path: Path, image_dir: Path | None, problems: list[Problem]) -> list[AnnotatedImage]:
    """Read every ``<image>``; images are looked up by their recorded name (which may hold a
    folder) and by file name in ``image_dir``, else ``images/`` beside the XML, else beside it."""
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as error:
        raise UserError(f"{xml_path}: not a readable CVAT annotation file ({error})") from None
    if root.find("track") is not None:
        raise UserError(f"{xml_path} is a 'CVAT for video 1.1' export (tracks): export the task as 'CVAT for images 1.1'")
    folders = [image_dir] if image_dir else [xml_path.parent / "images", xml_path.parent]
    images = []
    for element in root.iter("image"):
        name = element.get("name", "")
        where = f"{xml_path.name} image {element.get('id', len(images))} ({name})"
        candidates = [folder / relative for folder in folders for relative in (name, Path(name).name)]
        image_path = next((path for path in candidates if path.is_file()), candidates[0])
        boxes, dropped = [], 0
        for number, box in enumerate(element.iter("box"), start=1):
            try:
                corners = [float(box.get(key)) for key in ("xtl", "ytl", "xbr", "ybr")]
            except (TypeError, ValueError):
                corners = []
            if len(corners) != 4 or not all(map(math.isfinite, corners)):
                described = ", ".join(f"{key}={box.get(key)!r}" for key in ("xtl", "ytl", "xbr", "ybr"))
                problems.append(Problem(f"{where} box {number}", f"{described} are not four numbers", "dropped box"))
                dropped += 1
                continue
            rotation = float(box.get("rotation") or 0)
            if rotation:
                corners = _rotated_hull(corners, rotation)
                problems.append(Problem(f"{where} box {number}", f"box rotated {rotation:g}°: its upright hull is used", "note"))
            boxes.append(Box(box.get("label", "").strip(), *corners))
        others = Counter(child.tag for child in element if child.tag in _OTHER_SHAPES)
        if others:
            listing = ", ".join(f"{count} {tag}" for tag, count in sorted(others.items()))
            problems.append(Problem(where, f"{listing} left out: only boxes are read", "note"))
        images.append(
            AnnotatedImage(
                source=where,
                filename=Path(name).name,
                boxes=boxes,
                image_path=image_path,
                width=_size(element, "width"),
                height=_size(element, "height"),
                boxes_dropped=dropped,
            )
        )
    return images


def _size(element: ET.Element, key: str) -> int | None:
    try:
        return int(element.get(key)) or None
    except (TypeError, ValueError):
        return None


def _rotated_hull(corners: list[float], degrees: float) -> list[float]:
    """The upright box around CVAT's box ``corners`` turned ``degrees`` about its centre."""
    xtl, ytl, xbr, ybr = corners
    cx, cy, half_w, half_h = (xtl + xbr) / 2, (ytl + ybr) / 2, (xbr - xtl) / 2, (ybr - ytl) / 2
    cos, sin = abs(math.cos(math.radians(degrees))), abs(math.sin(math.radians(degrees)))
    reach_x, reach_y = half_w * cos + half_h * sin, half_w * sin + half_h * cos
    return [cx - reach_x, cy - reach_y, cx + reach_x, cy + reach_y]
