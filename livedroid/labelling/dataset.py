"""A labelling folder on disk: what ``mine`` writes, ``review`` edits and ``train`` reads.

```
DIR/images/NAME.jpg          the picked frames
DIR/annotations/NAME.xml     labelImg / Pascal VOC boxes (labelImg and CVAT open them)
DIR/label_map.pbtxt          the classes, with the model's ids
DIR/coco.json                the same boxes as COCO (Label Studio, CVAT import it)
DIR/mined.jsonl              one record per picked frame: its source, frame, time and reasons
DIR/review.json              the review status of each frame (accepted, edited, skipped, rejected)
DIR/contact_sheet.jpg        the picks, captioned with their reasons
```

Every file is written aside and moved in place (:func:`write_atomic`), so a crash leaves either
the old or the new version, never half of one. A rejected frame's image and XML wait
under ``rejected/`` (the XML as ``NAME.xml.rejected``), out of ``coco.json``: the dataset readers no
longer see it, and accepting it again brings both back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from livedroid.annotations import AnnotatedImage, Box
from livedroid.annotations.coco import coco_json
from livedroid.annotations.voc import read_voc_file, voc_xml
from livedroid.errors import UserError
from livedroid.labels import format_label_map, load_labels

IMAGES = "images"
ANNOTATIONS = "annotations"
REJECTED = "rejected"
LABEL_MAP = "label_map.pbtxt"
COCO = "coco.json"
RECORDS = "mined.jsonl"
REVIEW = "review.json"
CONTACT_SHEET = "contact_sheet.jpg"
REJECTED_XML_SUFFIX = ".xml.rejected"

#: Review states a frame can have; a frame with none is not reviewed yet.
STATES = ("accepted", "edited", "skipped", "rejected")
#: States whose boxes a person checked: such a frame with no box is a background image.
CHECKED = ("accepted", "edited")


def box_record(box: Box) -> dict:
    """A box as ``mined.jsonl`` and the review page carry it: label, [x1, y1, x2, y2], score."""
    record = {"label": box.label, "box": [round(v, 1) for v in (box.xmin, box.ymin, box.xmax, box.ymax)]}
    if box.score is not None:
        record["score"] = round(box.score, 4)
    return record


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``path`` aside, flush it to disk and move it in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None


# The folder ----------------------------------------------------------------------------------


class LabellingFolder:
    """Reads and writes one labelling folder; every write leaves the folder consistent."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # reading

    @property
    def exists(self) -> bool:
        return (self.root / ANNOTATIONS).is_dir() or (self.root / RECORDS).is_file()

    def label_map(self) -> dict[int, str]:
        path = self.root / LABEL_MAP
        return load_labels(path) if path.is_file() else {}

    def records(self) -> list[dict]:
        """The mining records (one per picked frame), torn or unreadable lines skipped."""
        path = self.root / RECORDS
        if not path.is_file():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "image" in record:
                records.append(record)
        return records

    def review_states(self) -> dict[str, str]:
        path = self.root / REVIEW
        try:
            states = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except ValueError:
            raise UserError(f"{path}: not valid JSON (restore it or delete it to review again)") from None
        return {name: state for name, state in states.items() if state in STATES}

    def annotation_path(self, name: str) -> Path:
        return self.root / ANNOTATIONS / (Path(name).stem + ".xml")

    def image_path(self, name: str) -> Path:
        """Where the image is now: images/, or rejected/ after a rejection."""
        for folder in (IMAGES, REJECTED):
            path = self.root / folder / name
            if path.is_file():
                return path
        return self.root / IMAGES / name

    def images(self) -> list[AnnotatedImage]:
        """Every image with its boxes: those with an XML file, in name order."""
        folder = self.root / ANNOTATIONS
        return [read_voc_file(path) for path in sorted(folder.glob("*.xml"))] if folder.is_dir() else []

    # writing

    def save_image(self, image: AnnotatedImage, jpeg: bytes | None = None) -> None:
        """Write the JPEG (when given) and the XML of one image (``write_coco`` refreshes the COCO copy)."""
        if jpeg is not None:
            write_atomic(self.root / IMAGES / image.filename, jpeg)
        write_atomic(self.annotation_path(image.filename), voc_xml(image, IMAGES))

    def rejected_annotation_path(self, name: str) -> Path:
        """Where a rejected frame's XML waits, beside its image, under a suffix no dataset reader
        takes for XML (they read every ``*.xml`` below a dataset folder)."""
        return self.root / REJECTED / (Path(name).stem + REJECTED_XML_SUFFIX)

    def reject(self, name: str) -> None:
        """Keep the frame out of the dataset: its XML, then its image, move to rejected/. The XML
        goes first: from that moment no dataset reader takes the frame. :meth:`restore` undoes it."""
        (self.root / REJECTED).mkdir(exist_ok=True)
        annotation = self.annotation_path(name)
        if annotation.is_file():
            os.replace(annotation, self.rejected_annotation_path(name))
        image = self.root / IMAGES / name
        if image.is_file():
            os.replace(image, self.root / REJECTED / name)

    def restore(self, name: str) -> None:
        """Undo :meth:`reject` (or finish one a crash cut short): the image, then the XML, back."""
        image = self.root / REJECTED / name
        if image.is_file():
            os.replace(image, self.root / IMAGES / name)
        kept, annotation = self.rejected_annotation_path(name), self.annotation_path(name)
        if kept.is_file() and not annotation.is_file():
            os.replace(kept, annotation)

    def write_label_map(self, label_map: dict[int, str]) -> None:
        write_atomic(self.root / LABEL_MAP, format_label_map(label_map))

    def write_coco(self, label_map: dict[int, str] | None = None) -> None:
        """``coco.json`` from the XML files (the two formats always hold the same boxes), with
        ``label_map`` or the folder's own; written only when it changes."""
        text = coco_json([(image.filename, image) for image in self.images()], label_map or self.label_map())
        path = self.root / COCO
        try:
            if path.read_text(encoding="utf-8") == text:
                return
        except OSError:
            pass
        write_atomic(path, text)

    def write_review_state(self, name: str, state: str | None) -> None:
        states = self.review_states()
        if state is None:
            states.pop(name, None)
        else:
            states[name] = state
        write_atomic(self.root / REVIEW, json.dumps(states, indent=1, sort_keys=True) + "\n")

    def append_records(self, records: list[dict]) -> None:
        """Add mining records (the whole file rewritten aside: a crash keeps the old one)."""
        lines = [json.dumps(r) for r in self.records() + records]
        write_atomic(self.root / RECORDS, "".join(line + "\n" for line in lines))
