"""Other tools' exports reviewed as they are: YOLO, CVAT for images 1.1, COCO and Label Studio.

``livedroid review`` reads an export with the very reader ``train prepare`` uses (``yolo``,
``cvat``, ``label_studio`` of ``livedroid.training.dataset``, :mod:`livedroid.annotations.coco`),
found in the same order, and writes each correction back into the export's own file in its own
format: a YOLO label file, the COCO JSON, CVAT's ``annotations.xml``, the Label Studio JSON.

Why in place and not a labelImg copy beside it: ``prepare`` reads an export's own annotations
before any XML (``data.yaml``, ``annotations.xml``, a COCO file come first), so corrections kept
beside would never reach training, and two copies of one truth drift apart. Written in place, the
same folder trains as it is and opens again in the tool it came from. What review does not
change stays as it was: a box the page left alone keeps its entry (COCO's segmentation, CVAT's
attributes, Label Studio's ids), and other shapes and fields are kept.

The user's export is never lost: the first time review writes one of its files, the original is
kept, once, as ``review-originals/PATH.orig`` (a suffix no reader takes for annotations).

Rejecting a frame (out of the dataset) is for mined and labelImg folders: an export would have to
lose the image's entry. In an export, delete the frame's boxes and accept it (a background image),
or remove the image in the tool it came from.
"""

from __future__ import annotations

import contextlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TypeVar

import yaml

from livedroid.annotations import AnnotatedImage, Box, Problem, coco, voc
from livedroid.errors import UserError
from livedroid.labelling.dataset import write_atomic

ORIGINALS = "review-originals"
Entry = TypeVar("Entry")


def pixel_key(box: Box) -> tuple:
    """A box as whole pixels and its label: what tells an edited box from one left as it was."""
    return (box.label, *(int(round(v)) for v in (box.xmin, box.ymin, box.xmax, box.ymax)))


def unchanged(saved: list[tuple[Box, Entry]], boxes: list[Box]) -> list[Entry | None]:
    """For each of ``boxes``, the format's entry of a saved box identical to it (kept as it was),
    else None (a new or changed box); each entry is used once."""
    pool: dict[tuple, list[Entry]] = {}
    for box, entry in saved:
        pool.setdefault(pixel_key(box), []).append(entry)
    found = []
    for box in boxes:
        same = pool.get(pixel_key(box))
        found.append(same.pop(0) if same else None)
    return found


def keep_original(root: Path, path: Path) -> None:
    """``path`` copied to ``root/review-originals/`` before review first writes it (once: a later
    review keeps the export as it was brought, not as an earlier review left it)."""
    if not path.is_file():
        return
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:  # a file outside the folder (a data.yaml 'path' elsewhere): by its name
        relative = Path(path.name)
    backup = root / ORIGINALS / f"{relative}.orig"
    if not backup.exists():
        write_atomic(backup, path.read_bytes())


class Export:
    """One export: its images as ``prepare`` reads them, its classes, and a writer of one image's boxes."""

    kind = ""
    writes = ""  # what a correction rewrites, for the line review prints on start

    def __init__(self, root: Path, file: Path, images_dir: Path | None) -> None:
        self.root, self.file, self.images_dir = root, file, images_dir

    def read(self, problems: list[Problem]) -> list[AnnotatedImage]:
        raise NotImplementedError

    def classes(self) -> list[str]:
        """The export's class names, in its own order."""
        raise NotImplementedError

    def annotated(self, image: AnnotatedImage) -> bool:
        """Whether the export holds an annotation of ``image`` (else accepting it writes one)."""
        return True

    def save(self, image: AnnotatedImage, boxes: list[Box]) -> None:
        raise NotImplementedError

    def add_class(self, name: str) -> None:
        raise NotImplementedError

    def _write(self, path: Path, data: bytes | str) -> None:
        keep_original(self.root, path)
        write_atomic(path, data)


class YoloExport(Export):
    """Ultralytics' and Roboflow's ``data.yaml`` layouts, and the Darknet one (``classes.txt``,
    ``obj.names``): a correction rewrites the image's label file."""

    kind = "YOLO"
    writes = "its label files"

    def __init__(self, root: Path, file: Path, images_dir: Path | None) -> None:
        super().__init__(root, file, images_dir)
        from livedroid.training.dataset import yolo

        self.yolo = yolo
        self.names = yolo.class_names(file)

    def read(self, problems: list[Problem]) -> list[AnnotatedImage]:
        try:
            # prepare's note on the export's own split is about training: not shown here
            with contextlib.redirect_stdout(io.StringIO()):
                if self.yolo.is_data_yaml(self.file):
                    return self.yolo.read_yolo(self.file, problems)
                return self.yolo.read_darknet(self.file, problems)
        except ImportError as error:
            raise UserError(f"{self.file}: reading a YOLO export needs Pillow ({error.name} is missing): "
                            "pip install pillow, or the train extra") from None

    def classes(self) -> list[str]:
        return [name for _, name in sorted(self.names.items())]

    def annotated(self, image: AnnotatedImage) -> bool:
        return self.yolo.label_path_of(image.image_path).is_file()

    def save(self, image: AnnotatedImage, boxes: list[Box]) -> None:
        class_ids = {name: number for number, name in self.names.items()}
        self._write(self.yolo.label_path_of(image.image_path), self.yolo.label_text(boxes, class_ids, image.width, image.height))

    def add_class(self, name: str) -> None:
        number = max(self.names, default=-1) + 1
        if self.yolo.is_data_yaml(self.file):
            config = yaml.safe_load(self.file.read_text(encoding="utf-8"))
            if isinstance(config["names"], list):
                config["names"].append(name)
            else:
                config["names"][number] = name
            if "nc" in config:  # Roboflow's class count: Ultralytics refuses one that disagrees with the names
                config["nc"] = len(config["names"])
            text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        else:
            text = "".join(f"{line}\n" for line in self.classes() + [name])
        self._write(self.file, text)
        self.names[number] = name


class CvatExport(Export):
    """CVAT for images 1.1: a correction rewrites the image's ``<box>`` elements of ``annotations.xml``."""

    kind = "CVAT for images 1.1"
    writes = "its annotations.xml"

    def read(self, problems: list[Problem]) -> list[AnnotatedImage]:
        from livedroid.training.dataset import cvat

        images = cvat.read_cvat(self.file, self.images_dir, problems)
        self.tree = ET.parse(self.file)  # read_cvat just parsed it
        return images

    def _labels(self) -> ET.Element | None:
        return self.tree.getroot().find("meta/*/labels")

    def classes(self) -> list[str]:
        labels = self._labels()
        names = [(label.findtext("name") or "").strip() for label in labels] if labels is not None else []
        names += [box.get("label", "").strip() for box in self.tree.getroot().iter("box")]
        return list(dict.fromkeys(name for name in names if name))

    def save(self, image: AnnotatedImage, boxes: list[Box]) -> None:
        element = next(e for e in self.tree.getroot().iter("image") if Path(e.get("name", "")).name == image.filename)
        saved = []
        for old in element.findall("box"):
            try:
                saved.append((Box(old.get("label", "").strip(), *(float(old.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))), old))
            except (TypeError, ValueError):
                pass  # unreadable: the reader dropped it, and so does the correction
            element.remove(old)
        for box, kept in zip(boxes, unchanged(saved, boxes)):
            if kept is None:
                kept = ET.Element("box", {"label": box.label, "source": "manual", "occluded": "0", "z_order": "0"})
                for key, value in zip(("xtl", "ytl", "xbr", "ybr"), (box.xmin, box.ymin, box.xmax, box.ymax)):
                    kept.set(key, f"{value:.2f}")
            element.append(kept)
        self._save_tree()

    def add_class(self, name: str) -> None:
        labels = self._labels()
        if labels is not None:  # else the classes are the boxes' labels: nothing to declare
            ET.SubElement(ET.SubElement(labels, "label"), "name").text = name
            self._save_tree()

    def _save_tree(self) -> None:
        self._write(self.file, ET.tostring(self.tree.getroot(), encoding="utf-8", xml_declaration=True))


class CocoExport(Export):
    """COCO in CVAT's layout (``annotations/instances_*.json``) or Roboflow's (a
    ``_annotations.coco.json`` per split): a correction replaces the image's annotations."""

    kind = "COCO"
    writes = "its COCO .json"

    def __init__(self, root: Path, files: list[Path], images_dir: Path | None) -> None:
        super().__init__(root, files[0], images_dir)
        self.files = files
        self.documents: dict[Path, dict] = {}
        self.place: dict[str, tuple[Path, object]] = {}  # file name → its COCO file and image id

    def read(self, problems: list[Problem]) -> list[AnnotatedImage]:
        images = []
        for path in self.files:
            read = coco.read_coco(path, self.images_dir, problems)
            self.documents[path] = document = json.loads(path.read_text(encoding="utf-8"))
            ids = list(dict.fromkeys(entry["id"] for entry in document["images"]))  # as read_coco keeps them
            for image_id, image in zip(ids, read):
                self.place.setdefault(image.filename, (path, image_id))
            images += read
        return images

    def classes(self) -> list[str]:
        categories = [c for document in self.documents.values() for c in sorted(document["categories"], key=lambda c: c["id"])]
        return list(dict.fromkeys(str(c["name"]) for c in categories))

    def save(self, image: AnnotatedImage, boxes: list[Box]) -> None:
        path, image_id = self.place[image.filename]
        document = self.documents[path]
        ids = {str(c["name"]): c["id"] for c in document["categories"]}
        names = {c["id"]: str(c["name"]) for c in document["categories"]}
        others, saved = [], []
        for annotation in document["annotations"]:
            if not isinstance(annotation, dict) or annotation.get("image_id") != image_id:
                others.append(annotation)
            elif coco.is_bbox(annotation.get("bbox")) and annotation.get("category_id") in names:
                x, y, w, h = (float(v) for v in annotation["bbox"])
                saved.append((Box(names[annotation["category_id"]], x, y, x + w, y + h), annotation))
        next_id = 1 + max((a["id"] for a in document["annotations"] if isinstance(a, dict) and isinstance(a.get("id"), int)), default=0)
        kept = unchanged(saved, boxes)
        for number, (box, annotation) in enumerate(zip(boxes, kept)):
            if annotation is None:
                kept[number] = coco.coco_annotation(next_id, image_id, ids[box.label], box)
                next_id += 1
        document["annotations"] = others + kept
        self._write(path, json.dumps(document, ensure_ascii=False))

    def add_class(self, name: str) -> None:
        for path, document in self.documents.items():
            number = 1 + max((c["id"] for c in document["categories"]), default=0)
            document["categories"].append({"id": number, "name": name, "supercategory": ""})
            self._write(path, json.dumps(document, ensure_ascii=False))


class LabelStudioExport(Export):
    """Label Studio's JSON export: a correction replaces the rectangles of the task's annotation
    (percent of the image, as Label Studio imports them), keeping its other results."""

    kind = "Label Studio"
    writes = "its JSON export"

    def read(self, problems: list[Problem]) -> list[AnnotatedImage]:
        from livedroid.training.dataset import label_studio

        self.studio = label_studio
        images = label_studio.read_label_studio(self.file, self.images_dir, problems)
        self.tasks = json.loads(self.file.read_text(encoding="utf-8"))
        # the tasks read_label_studio turned into images, in its order
        labelled = [t for t in self.tasks if label_studio.image_url(t.get("data")) and label_studio.annotation_of(t)]
        self.task_of = {}
        for image, task in zip(images, labelled):
            self.task_of.setdefault(image.filename, task)
        rectangles = [r for t in labelled for r in label_studio.annotation_of(t).get("result") or []
                      if isinstance(r, dict) and r.get("type") == "rectanglelabels"]
        self.names = (rectangles[0].get("from_name", "label"), rectangles[0].get("to_name", "image")) if rectangles else ("label", "image")
        self.labels = [str(label) for r in rectangles for label in (r.get("value") or {}).get("rectanglelabels") or []]
        return images

    def classes(self) -> list[str]:
        return list(dict.fromkeys(self.labels))

    def save(self, image: AnnotatedImage, boxes: list[Box]) -> None:
        annotation = self.studio.annotation_of(self.task_of[image.filename])
        others, saved = [], []
        for result in annotation.get("result") or []:
            probe = AnnotatedImage("", "")
            self.studio.add_box(probe, result, [])
            if probe.boxes:
                saved.append((probe.boxes[0], result))
            elif not (isinstance(result, dict) and result.get("type") == "rectanglelabels"):
                others.append(result)
        results = [kept or self._rectangle(box, image.width, image.height, number)
                   for number, (box, kept) in enumerate(zip(boxes, unchanged(saved, boxes)), start=1)]
        annotation["result"] = others + results
        self._write(self.file, json.dumps(self.tasks, ensure_ascii=False))

    def _rectangle(self, box: Box, width: int, height: int, number: int) -> dict:
        from_name, to_name = self.names
        return {
            "id": f"livedroid-{number}", "type": "rectanglelabels", "from_name": from_name, "to_name": to_name,
            "original_width": width, "original_height": height, "image_rotation": 0,
            "value": {"x": box.xmin / width * 100, "y": box.ymin / height * 100, "width": (box.xmax - box.xmin) / width * 100,
                      "height": (box.ymax - box.ymin) / height * 100, "rotation": 0, "rectanglelabels": [box.label]},
        }

    def add_class(self, name: str) -> None:
        self.labels.append(name)  # the export holds no class list: its boxes name the classes


def locate(root: Path) -> tuple[str, list[Path]] | None:
    """Which annotations the folder ``root`` holds, in the one order ``train prepare`` and
    ``review`` both look (so review writes the file prepare reads): ``(kind, files)`` with kind
    ``yolo`` (its data.yaml), ``cvat``, ``coco``, ``label-studio`` (every candidate file: one is
    expected), ``voc`` (labelImg XML files, no list) or ``darknet`` (its classes.txt/obj.names);
    None when none of them."""
    from livedroid.training.dataset import cvat, label_studio, yolo

    data_yaml = yolo.find_data_yaml(root)
    if data_yaml:
        return "yolo", [data_yaml]
    cvat_files = [p for p in sorted(root.rglob(cvat.EXPORT_FILE)) if cvat.is_cvat_xml(p)]
    if cvat_files:
        return "cvat", cvat_files
    json_files = sorted(root.rglob("*.json"))
    coco_files = [p for p in json_files if coco.is_coco_json(p)]
    if coco_files:
        return "coco", coco_files
    studio_files = [p for p in json_files if label_studio.is_label_studio_json(p)]
    if studio_files:
        return "label-studio", studio_files
    if voc.find_xml_files(root):
        return "voc", []
    names_file = yolo.find_names_file(root)
    if names_file:
        return "darknet", [names_file]
    return None


REVIEW_PICKS = ": review opens one export a folder; move the others out"


def find_export(root: Path, images_dir: Path | None = None) -> Export | None:
    """The export in ``root`` (:func:`locate`); None when there is none or it is labelImg XML
    (review says where those files should be); UserError when several files compete."""
    kind, files = locate(root) or (None, [])
    if kind in ("yolo", "darknet"):
        return YoloExport(root, files[0], images_dir)
    if kind == "cvat":
        return CvatExport(root, one_export(root, files, "CVAT", REVIEW_PICKS), images_dir)
    if kind == "coco":
        return CocoExport(root, files if coco.are_split_files(files) else [one_export(root, files, "COCO", REVIEW_PICKS)], images_dir)
    if kind == "label-studio":
        return LabelStudioExport(root, one_export(root, files, "Label Studio", REVIEW_PICKS), images_dir)
    return None


def one_export(root: Path, files: list[Path], kind: str, advice: str) -> Path:
    """The one ``kind`` file :func:`locate` found in ``root``. Several are ambiguous (copies,
    exports of different projects): the user picks, as ``advice`` (the command's own) says."""
    if len(files) > 1:
        raise UserError(f"{root} holds several {kind} files ({', '.join(map(str, files))}){advice}")
    return files[0]
