"""Pascal VOC XML annotations, as labelImg writes them, in the usual folder layouts: the reader
``prepare`` uses and the writer of ``mine`` and ``review``.

Handles XML beside the images, ``annotations/`` + ``images/`` (labelImg, star-wars, raccoon),
VOC's ``Annotations/`` + ``JPEGImages/`` and Oxford-IIIT Pets' ``annotations/xmls/`` + ``images/``.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from livedroid.annotations import AnnotatedImage, Box, Problem
from livedroid.errors import UserError

# Where the images of an XML file may be, relative to the dataset root.
_IMAGE_FOLDERS = ("images", "JPEGImages", "imgs", ".")


def find_xml_files(root: Path) -> list[Path]:
    """All ``.xml`` annotation files under ``root``, sorted for a deterministic order."""
    return sorted(p for p in root.rglob("*.xml") if p.is_file())


def read_voc_folder(root: Path, problems: list[Problem]) -> list[AnnotatedImage]:
    """Read every XML file under ``root``; unparsable files are reported in ``problems``."""
    images = []
    for xml_path in find_xml_files(root):
        where = str(xml_path.relative_to(root))
        try:
            images.append(parse_voc_xml(xml_path.read_bytes(), where, xml_path.parent, root))
        except (ET.ParseError, ValueError) as error:
            problems.append(Problem(where, f"cannot read the annotation: {error}", "dropped image"))
    return images


def read_voc_file(path: Path) -> AnnotatedImage:
    """One XML file, for a command that cannot go on without it: UserError naming the file."""
    path = Path(path)
    try:
        return parse_voc_xml(path.read_bytes(), str(path), path.parent, path.parent.parent)
    except (ET.ParseError, ValueError, OSError) as error:
        raise UserError(f"{path}: not a readable labelImg XML file ({error})") from None


def parse_voc_xml(data: bytes, where: str, xml_folder: Path, root: Path) -> AnnotatedImage:
    """Parse one VOC XML document; raises ValueError naming the bad element."""
    tree = ET.fromstring(data)
    if tree.tag != "annotation":
        raise ValueError(f"root element is <{tree.tag}>, expected <annotation>")
    filename = (tree.findtext("filename") or "").strip()
    if not filename:
        raise ValueError("no <filename>")
    size = tree.find("size")
    width = _int(size, "width") if size is not None else None
    height = _int(size, "height") if size is not None else None
    boxes = []
    for number, obj in enumerate(tree.findall("object"), start=1):
        box = obj.find("bndbox")
        if box is None:
            raise ValueError(f"object {number} has no <bndbox>")
        boxes.append(
            Box(
                label=(obj.findtext("name") or "").strip(),
                xmin=_float(box, "xmin"),
                ymin=_float(box, "ymin"),
                xmax=_float(box, "xmax"),
                ymax=_float(box, "ymax"),
                difficult=(obj.findtext("difficult") or "0").strip() == "1",
                truncated=(obj.findtext("truncated") or "0").strip() == "1",
            )
        )
    return AnnotatedImage(
        source=where,
        filename=filename,
        boxes=boxes,
        image_path=_find_image(filename, tree.findtext("path"), xml_folder, root),
        width=width or None,
        height=height or None,
    )


def _find_image(filename: str, recorded_path: str | None, xml_folder: Path, root: Path) -> Path:
    """The image file named by the XML: beside it, in a usual image folder, or at its recorded
    ``<path>``; when none exists, the path beside the XML (the validator reports it missing)."""
    candidates = [xml_folder / filename, xml_folder.parent / "images" / filename]
    candidates += [root / folder / filename for folder in _IMAGE_FOLDERS]
    if recorded_path:
        candidates.append(Path(recorded_path.strip()))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return xml_folder / filename


def _float(parent: ET.Element, tag: str) -> float:
    text = parent.findtext(tag)
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"<{tag}> is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"<{tag}> is {text.strip()!r}, not a finite number")
    return value


def _int(parent: ET.Element, tag: str) -> int:
    return int(round(_float(parent, tag)))


def voc_xml(image: AnnotatedImage, folder: str = "images") -> str:
    """labelImg's XML for one image in ``folder`` (the elements labelImg writes, in its order)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = image.filename
    ET.SubElement(root, "path").text = f"../{folder}/{image.filename}"
    ET.SubElement(ET.SubElement(root, "source"), "database").text = "livedroid"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", image.width or 0), ("height", image.height or 0), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    root.extend(voc_object(box) for box in image.boxes)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def voc_object(box: Box) -> ET.Element:
    """One ``<object>``: name, pose, truncated, difficult and the box in whole pixels."""
    obj = ET.Element("object")
    ET.SubElement(obj, "name").text = box.label
    ET.SubElement(obj, "pose").text = "Unspecified"
    ET.SubElement(obj, "truncated").text = str(int(box.truncated))
    ET.SubElement(obj, "difficult").text = str(int(box.difficult))
    bndbox = ET.SubElement(obj, "bndbox")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), (box.xmin, box.ymin, box.xmax, box.ymax)):
        ET.SubElement(bndbox, tag).text = str(int(round(value)))
    return obj
