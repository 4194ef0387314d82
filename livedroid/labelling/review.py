"""``livedroid review DIR``: a page on 127.0.0.1 to check and correct pre-annotated frames.

The page (``review_page.html``) walks through the frames of a labelling folder (what ``mine``
writes, or a plain labelImg folder: ``images/`` and ``annotations/``), or of another tool's export
(YOLO, CVAT for images 1.1, COCO, Label Studio: :class:`ExportReview`, written back in its own
format, see :mod:`livedroid.labelling.exports`), and saves every change at once through a small
JSON API:

```
GET  /api/frames            the frames in review order, the classes, the progress
GET  /api/frames/NAME       one frame: size, boxes, review state, mining record
PUT  /api/frames/NAME       {"boxes": [{"label": L, "box": [x1, y1, x2, y2], "ref": I}, …], "state": S}
POST /api/classes           {"name": N}: a class added to the label map (label_map.pbtxt, coco.json)
GET  /images/NAME           the image (from images/, or rejected/ once rejected)
```

A request body is at most ``MAX_BODY_BYTES``, nests at most ``MAX_JSON_DEPTH`` levels and holds
at most ``MAX_BOXES`` boxes; beyond that it is refused (413 or 400, one line) before any work.

``ref`` is the box's place in the frame's XML file as the GET gave it (none for a new box): a
box that keeps its place and coordinates keeps its XML element as it was (``difficult``,
``truncated``, labelImg's own fields), and an XML file is rewritten only when a box changed. Each
PUT writes the frame's XML, ``review.json`` and ``coco.json`` (for a mined folder, or a labelImg
folder that already has one), each atomically (:mod:`livedroid.labelling.dataset`). A rejected
frame's image moves to ``rejected/`` and its XML to ``rejected/NAME.xml.rejected`` (not ``.xml``:
the dataset readers look for XML files in every subfolder), from where accepting brings both back.

The folder's lock (:mod:`livedroid.folder_lock`, the one ``mine`` and ``batch`` take too) keeps a
second review, or a ``mine`` into the folder, out while the review runs.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
import webbrowser
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import cv2
from aiohttp import web

from livedroid.annotations import AnnotatedImage, Box, Problem
from livedroid.annotations.voc import read_voc_file, voc_object, voc_xml
from livedroid.errors import UserError
from livedroid.folder_lock import FolderLock
from livedroid.labelling.dataset import (
    ANNOTATIONS, CHECKED, COCO, IMAGES, RECORDS, REJECTED, STATES, LabellingFolder, box_record, write_atomic,
)
from livedroid.labelling.exports import ORIGINALS, Export, find_export, pixel_key, unchanged
from livedroid.signals import StopOnSignals
from livedroid.web import LOCAL_HOST, WebServer, local_names_only, port_number

log = logging.getLogger("livedroid")

DEFAULT_PORT = 8765
#: States that count as reviewed (skipped means: decide later).
REVIEWED = ("accepted", "edited", "rejected")
#: The images a browser shows, and so the frames a review walks through.
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".bmp": "image/bmp", ".webp": "image/webp"}


#: What the API accepts: a body (a frame's boxes) of at most this many bytes, nested at most this
#: deep ({"boxes": [{"box": [...]}]} is 4), with at most this many boxes a frame (COCO's crowded
#: images hold under 100; the Object Detection API keeps 100 detections an image).
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 8
MAX_BOXES = 1000
#: Longest class name the page may add.
MAX_CLASS_NAME = 100


class BadRequest(Exception):
    """Input the API refuses: answered with 400 and the message."""


# The folder as the page sees it ------------------------------------------------------------------


def check_name(name: str) -> str:
    """A plain file name: no folders, no ``..``, not hidden; BadRequest otherwise."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\x00") or name.startswith("."):
        raise BadRequest(f"{name!r}: not a file name of this folder")
    return name


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in CONTENT_TYPES and not path.name.startswith(".") and path.is_file()


def _coords_text(value: float) -> str:
    return str(int(round(value)))


class Review:
    """The frames of one folder in review order, and the edits written back to it."""

    def __init__(self, folder: LabellingFolder) -> None:
        self.folder = folder
        self.mined = (folder.root / RECORDS).is_file()
        # coco.json belongs to a mined folder; a labelImg folder gets it refreshed only if it has one
        self.writes_coco = self.mined or (folder.root / COCO).is_file()
        self.records: dict[str, dict] = {}
        for record in folder.records():
            self.records.setdefault(str(record["image"]), record)
        self.names = self._frame_names()
        self.label_map = folder.label_map() or self._coco_classes() or self._xml_classes()

    def _frame_names(self) -> list[str]:
        """Every frame that has an image, in mined order, then by name."""
        root = self.folder.root
        found: set[str] = set()
        for folder in (IMAGES, REJECTED):
            if (root / folder).is_dir():
                found.update(p.name for p in (root / folder).iterdir() if _is_image(p))
        stems = {Path(name).stem for name in found}
        xml_files = sorted((root / ANNOTATIONS).glob("*.xml")) if (root / ANNOTATIONS).is_dir() else []
        #: XML files without an image: not frames of the review
        self.orphans = [path.name for path in xml_files if path.stem not in stems]
        names = []
        for name in found:
            try:
                names.append(check_name(name))
            except BadRequest:
                log.warning("%s: a file name the page cannot ask for, left out", name)
        mined = [name for name in self.records if name in names]
        return mined + sorted(set(names) - set(mined))

    def _coco_classes(self) -> dict[int, str]:
        """A labelImg folder's ``coco.json`` categories, when it has no label map."""
        try:
            categories = json.loads((self.folder.root / COCO).read_text(encoding="utf-8")).get("categories", [])
            return {int(c["id"]): str(c["name"]) for c in categories if int(c["id"]) >= 1}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return {}

    def _xml_classes(self) -> dict[int, str]:
        """Without a label map: the names the XML files use, numbered 1..K in name order."""
        names = set()
        for name in self.names:
            image, _ = self._read_xml(name)
            if image is not None:
                names.update(box.label for box in image.boxes if box.label)
        return {number: name for number, name in enumerate(sorted(names), start=1)}

    # reading

    def known(self, name: str) -> str:
        check_name(name)
        if name not in self.names:
            raise web.HTTPNotFound(text=json.dumps({"error": f"{name}: no such frame in this folder"}),
                                   content_type="application/json")
        return name

    def classes(self) -> list[dict]:
        return [{"id": class_id, "name": name} for class_id, name in sorted(self.label_map.items())]

    def _xml_path(self, name: str) -> Path | None:
        for path in (self.folder.annotation_path(name), self.folder.rejected_annotation_path(name)):
            if path.is_file():
                return path
        return None

    def _read_xml(self, name: str) -> tuple[AnnotatedImage | None, ET.Element | None]:
        path = self._xml_path(name)
        if path is None:
            return None, None
        image = read_voc_file(path)
        try:
            root = ET.fromstring(path.read_bytes())
        except (ET.ParseError, OSError) as error:  # pragma: no cover - read_voc_file read it just now
            raise UserError(f"{path}: not a readable labelImg XML file ({error})") from None
        return image, root

    def stored(self, name: str) -> tuple[AnnotatedImage, ET.Element | None]:
        """The frame's image and boxes as saved (a rejected frame: as it was when rejected), with
        its XML tree (None when the frame has no XML file yet)."""
        image, root = self._read_xml(name)
        if image is None:
            image = AnnotatedImage(name, name)
        image.filename = name
        return self._sized(image, name), root

    def _sized(self, image: AnnotatedImage, name: str) -> AnnotatedImage:
        """``image`` with its size: the annotation's, else the image file's."""
        if not image.width or not image.height:
            pixels = cv2.imread(str(self.image_path(name)), cv2.IMREAD_UNCHANGED)
            if pixels is None:
                raise UserError(f"{self.image_path(name)}: not a readable image")
            image.height, image.width = pixels.shape[:2]
        return image

    def image_path(self, name: str) -> Path:
        return self.folder.image_path(name)

    def describe(self) -> str:
        """The folder, for the line printed on start."""
        return str(self.folder.root)

    def progress(self, states: dict[str, str] | None = None) -> dict:
        states = self.folder.review_states() if states is None else states
        return {"reviewed": sum(states.get(n) in REVIEWED for n in self.names), "total": len(self.names)}

    def frame(self, name: str, states: dict[str, str] | None = None) -> dict:
        states = self.folder.review_states() if states is None else states
        image, _ = self.stored(name)
        record = self.records.get(name, {})
        return {
            "name": name,
            "index": self.names.index(name),
            "width": image.width,
            "height": image.height,
            "boxes": [dict(box_record(box), ref=number) for number, box in enumerate(image.boxes)],
            "state": states.get(name),
            "reasons": [str(r) for r in record.get("reasons", [])],
            "record": {key: record[key] for key in ("source", "frame", "timestamp", "score") if key in record},
            "progress": self.progress(states),
        }

    def frames(self) -> dict:
        states = self.folder.review_states()
        return {
            "folder": str(self.folder.root),
            "mined": self.mined,
            "classes": self.classes(),
            "frames": [
                {"name": n, "state": states.get(n), "reasons": [str(r) for r in self.records.get(n, {}).get("reasons", [])]}
                for n in self.names
            ],
            "progress": self.progress(states),
        }

    # writing

    def parse_boxes(self, value: object, image: AnnotatedImage) -> tuple[list[Box], list[int | None]]:
        """The boxes of a PUT, clipped to the image, and each one's ``ref`` (None: a new box)."""
        if not isinstance(value, list):
            raise BadRequest('"boxes" must be a list of {"label": NAME, "box": [x1, y1, x2, y2]}')
        if len(value) > MAX_BOXES:
            raise BadRequest(f"{len(value)} boxes: at most {MAX_BOXES} a frame")
        # labels of the label map; names already in this frame's file (a hand-made folder's
        # "bb8") may stay, so that a frame can be accepted as it is
        allowed = set(self.label_map.values()) | {box.label for box in image.boxes}
        boxes, refs = [], []
        for number, item in enumerate(value, start=1):
            if not isinstance(item, dict) or not isinstance(item.get("box"), list) or len(item["box"]) != 4:
                raise BadRequest(f'box {number}: expected {{"label": NAME, "box": [x1, y1, x2, y2]}}')
            label = item.get("label")
            if not isinstance(label, str) or label not in allowed:
                names = ", ".join(sorted(self.label_map.values())) or "none"
                raise BadRequest(f"box {number}: label {label!r} is not in the label map ({names})")
            coords = item["box"]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in coords):
                raise BadRequest(f"box {number}: coordinates must be numbers")
            x1, x2 = sorted(min(max(float(v), 0.0), image.width) for v in (coords[0], coords[2]))
            y1, y2 = sorted(min(max(float(v), 0.0), image.height) for v in (coords[1], coords[3]))
            if x2 - x1 < 1 or y2 - y1 < 1:
                raise BadRequest(f"box {number}: empty inside the {image.width}x{image.height} image")
            ref = item.get("ref")
            if ref is not None:
                if not isinstance(ref, int) or isinstance(ref, bool) or not 0 <= ref < len(image.boxes) or ref in refs:
                    raise BadRequest(
                        f"box {number}: ref {ref!r} is not one of the frame's {len(image.boxes)} saved boxes")
            score = item.get("score")
            boxes.append(Box(label, x1, y1, x2, y2, score=score if isinstance(score, (int, float)) else None))
            refs.append(ref)
        return boxes, refs

    def xml_text(self, stored: AnnotatedImage, root: ET.Element | None, boxes: list[Box],
                 refs: list[int | None]) -> str:
        """The frame's XML with ``boxes``: the saved file edited (its other elements, and the
        elements of boxes that did not change, kept as they were), or labelImg's XML when the
        frame has none yet."""
        if root is None:
            return voc_xml(AnnotatedImage(stored.source, stored.filename, boxes, width=stored.width, height=stored.height))
        root = copy.deepcopy(root)
        objects = root.findall("object")
        children = list(root)
        at = children.index(objects[0]) if objects else len(children)
        for obj in objects:
            root.remove(obj)
        size = root.find("size")
        if size is None:
            size = ET.SubElement(root, "size")
        for tag, value in (("width", stored.width), ("height", stored.height)):
            element = size.find(tag)
            if element is None:
                element = ET.SubElement(size, tag)
            if not (element.text or "").strip() or float(element.text) <= 0:
                element.text = str(value)
        refs = list(refs)
        unused: dict[tuple, list[int]] = {}  # saved boxes no ref names, by key, in file order
        for i in range(len(stored.boxes)):
            if i not in set(refs):
                unused.setdefault(_key([stored.boxes[i]])[0], []).append(i)
        for number, ref in enumerate(refs):  # a box sent without its ref, as it was saved: that box
            same = unused.get(_key([boxes[number]])[0]) if ref is None else None
            if same:
                refs[number] = same.pop(0)
        for offset, (box, ref) in enumerate(zip(boxes, refs)):
            if ref is None:
                obj = voc_object(box)  # a new box, as labelImg writes one
            elif _key([box]) == _key([stored.boxes[ref]]):
                obj = objects[ref]  # untouched: as it was, float coordinates and all
            else:
                obj = copy.deepcopy(objects[ref])  # moved or relabelled: its other elements kept
                name = obj.find("name")
                if name is None:
                    name = ET.SubElement(obj, "name")
                name.text = box.label
                bndbox = obj.find("bndbox")
                if bndbox is None:
                    bndbox = ET.SubElement(obj, "bndbox")
                for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), (box.xmin, box.ymin, box.xmax, box.ymax)):
                    element = bndbox.find(tag)
                    if element is None:
                        element = ET.SubElement(bndbox, tag)
                    element.text = _coords_text(value)
            root.insert(at + offset, obj)
        ET.indent(root, space="\t" if "\n\t" in (ET.tostring(root, encoding="unicode")) else "  ")
        return ET.tostring(root, encoding="unicode") + "\n"

    def update(self, name: str, body: object) -> dict:
        if not isinstance(body, dict):
            raise BadRequest('expected a JSON object {"boxes": [...], "state": ...}')
        requested = body.get("state")
        if requested is not None and requested not in STATES:
            raise BadRequest(f"state {requested!r}: expected one of {', '.join(STATES)} or null")
        states = self.folder.review_states()
        current = states.get(name)
        stored, root = self.stored(name)
        if "boxes" in body:
            boxes, refs = self.parse_boxes(body["boxes"], stored)
        else:
            boxes, refs = stored.boxes, list(range(len(stored.boxes)))
        changed = _key(boxes) != _key(stored.boxes)
        if requested == "rejected" or (current == "rejected" and requested != "accepted"):
            self.reject(name, stored, root, boxes, refs, changed)
            state = "rejected"
        else:
            self.restore(name, current)
            if changed:
                state = "edited"
            elif requested == "accepted":
                state = "edited" if current == "edited" else "accepted"
            elif requested == "skipped":
                state = current if current in REVIEWED else "skipped"
            else:
                state = None if current == "rejected" else current  # an edit-free save: no decision
            # the boxes are written when one changed, and for an accepted frame that had no annotation
            if changed or (not self.annotated(name) and state in CHECKED):
                self.save(name, stored, root, boxes, refs)
        if state != current:
            self.folder.write_review_state(name, state)
        if self.writes_coco and self.label_map:
            self.write_coco()
        return self.frame(name)

    def reject(self, name: str, stored: AnnotatedImage, root: ET.Element | None, boxes: list[Box],
               refs: list[int | None], changed: bool) -> None:
        """Rejected, or edited while rejected (the edit lands in the rejected copy). The XML goes
        first: from that moment no dataset reader takes the frame."""
        self.folder.reject(name)
        if changed:
            write_atomic(self.folder.rejected_annotation_path(name), self.xml_text(stored, root, boxes, refs))

    def restore(self, name: str, current: str | None) -> None:
        """A frame accepted again (or a rejection a crash cut short): back into the dataset."""
        half_rejected = (self.folder.root / REJECTED / name).is_file() or self.folder.rejected_annotation_path(name).is_file()
        if current == "rejected" or half_rejected:
            self.folder.restore(name)

    def annotated(self, name: str) -> bool:
        return self.folder.annotation_path(name).is_file()

    def save(self, name: str, stored: AnnotatedImage, root: ET.Element | None, boxes: list[Box],
             refs: list[int | None]) -> None:
        write_atomic(self.folder.annotation_path(name), self.xml_text(stored, root, boxes, refs))

    def write_coco(self) -> None:
        self.folder.write_coco(self.label_map)

    def add_class(self, body: object) -> dict:
        """A class the label map lacks, added by name with the next id: ``label_map.pbtxt`` (the
        writer ``mine`` uses) and ``coco.json``'s categories follow. A class already there is kept."""
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise BadRequest('expected {"name": CLASS}')
        name = name.strip()
        if len(name) > MAX_CLASS_NAME or not name.isprintable():
            raise BadRequest(f"class name {name[:40]!r}…: at most {MAX_CLASS_NAME} printable characters")
        if name not in self.label_map.values():
            self.label_map = {**self.label_map, max(self.label_map, default=0) + 1: name}
            self.store_class(name)
            log.info("%s: class %s added to the label map", self.folder.root, name)
        return {"classes": self.classes()}

    def store_class(self, name: str) -> None:
        self.folder.write_label_map(self.label_map)
        if self.writes_coco:
            self.write_coco()

    def repair(self) -> None:
        """A mined folder's ``coco.json`` brought in line with its XML files (a crash between the
        two writes, or labelImg's edits, leave it behind)."""
        if self.mined and self.label_map:
            self.write_coco()


class ExportReview(Review):
    """The review of another tool's export (:mod:`livedroid.labelling.exports`): its frames as
    ``prepare`` reads them, each correction written back into the export in its format. The
    review states are kept in ``review.json`` as for any folder."""

    def __init__(self, folder: LabellingFolder, export: Export) -> None:
        self.folder, self.export = folder, export
        self.mined = self.writes_coco = False
        self.records: dict[str, dict] = {}
        self.orphans: list[str] = []
        self.problems: list[Problem] = []
        self.images: dict[str, AnnotatedImage] = {}
        missing = []
        for image in export.read(self.problems):
            if image.filename in self.images:
                log.warning("%s: a second image named %s, left out (review knows a frame by its file name)",
                            image.source, image.filename)
            elif image.image_path is None or not image.image_path.is_file():
                missing.append(image.filename)
            else:
                self.images[image.filename] = image
        if self.problems:  # prepare reports them too; a frame saved from the page is written without them
            log.warning("%s: %d problem(s) reading the export (boxes it cannot use are left out, and a frame saved "
                        "here is written without them): %s", export.file, len(self.problems),
                        "; ".join(map(str, self.problems[:3])) + (" …" if len(self.problems) > 3 else ""))
        if missing:
            log.warning("%s: %d image(s) the export names are not found, left out: %s%s", export.file, len(missing),
                        ", ".join(missing[:5]), " …" if len(missing) > 5 else "")
        self.names = [name for name in sorted(self.images) if self._nameable(name)]
        self.label_map = dict(enumerate(export.classes(), start=1))

    @staticmethod
    def _nameable(name: str) -> bool:
        try:
            return bool(check_name(name))
        except BadRequest:
            log.warning("%s: a file name the page cannot ask for, left out", name)
            return False

    def describe(self) -> str:
        export = self.export
        return (f"{self.folder.root}, a {export.kind} export ({export.file.name}): corrections are written to "
                f"{export.writes}, each original kept once in {self.folder.root / ORIGINALS}/")

    def image_path(self, name: str) -> Path:
        return self.images[name].image_path

    def stored(self, name: str) -> tuple[AnnotatedImage, None]:
        return self._sized(copy.deepcopy(self.images[name]), name), None

    def reject(self, name: str, stored: AnnotatedImage, root: None, boxes: list[Box], refs: list[int | None],
               changed: bool) -> None:
        raise BadRequest(f"{name}: a {self.export.kind} export keeps every image it names: delete the boxes and "
                         "accept the frame (a background image), or remove the image in the tool it came from")

    def restore(self, name: str, current: str | None) -> None:
        pass  # an export's frames are never rejected

    def annotated(self, name: str) -> bool:
        return self.export.annotated(self.images[name])

    def save(self, name: str, stored: AnnotatedImage, root: None, boxes: list[Box], refs: list[int | None]) -> None:
        # a box the page sent back as it was (to a tenth of a pixel) is saved with the export's own coordinates
        boxes = [same or box for box, same in zip(boxes, unchanged([(b, b) for b in stored.boxes], boxes))]
        self.export.save(stored, boxes)
        self.images[name] = AnnotatedImage(stored.source, stored.filename, list(boxes), image_path=stored.image_path,
                                           width=stored.width, height=stored.height)

    def store_class(self, name: str) -> None:
        self.export.add_class(name)


def _key(boxes: list[Box]) -> list[tuple]:
    """Boxes as the XML keeps them (whole pixels), to tell an edit from a plain accept."""
    return [pixel_key(box) for box in boxes]


# The web app -------------------------------------------------------------------------------------


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json_body(request: web.Request) -> object:
    """The request's JSON, bounded: at most ``MAX_BODY_BYTES`` (413), nested at most
    ``MAX_JSON_DEPTH`` deep (400), each refusal one line."""
    try:
        text = await request.text()
    except web.HTTPRequestEntityTooLarge:
        raise web.HTTPRequestEntityTooLarge(
            MAX_BODY_BYTES, request.content_length or 0,
            text=json.dumps({"error": f"the body is larger than {MAX_BODY_BYTES // 1024} KiB "
                                      f"(at most {MAX_BOXES} boxes a frame)"}),
            content_type="application/json") from None
    too_deep = BadRequest(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(text)
    except RecursionError:
        raise too_deep from None
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None
    level, depth = [body], 1
    while level:  # breadth first: no recursion, whatever the body
        if depth > MAX_JSON_DEPTH:
            raise too_deep
        level = [child for item in level if isinstance(item, (list, dict))
                 for child in (item.values() if isinstance(item, dict) else item) if isinstance(child, (list, dict))]
        depth += 1
    return body


def make_app(review: Review) -> web.Application:
    page = resources.files("livedroid.labelling").joinpath("review_page.html").read_text(encoding="utf-8")

    @web.middleware
    async def errors(request: web.Request, handler):
        try:
            return await handler(request)
        except BadRequest as error:
            return _error(400, str(error))
        except UserError as error:
            return _error(500, str(error))

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def frames(_request: web.Request) -> web.Response:
        return web.json_response(review.frames())

    async def frame(request: web.Request) -> web.Response:
        return web.json_response(review.frame(review.known(request.match_info["name"])))

    async def put_frame(request: web.Request) -> web.Response:
        name = review.known(request.match_info["name"])
        return web.json_response(review.update(name, await _json_body(request)))

    async def add_class(request: web.Request) -> web.Response:
        return web.json_response(review.add_class(await _json_body(request)))

    async def image(request: web.Request) -> web.StreamResponse:
        name = review.known(request.match_info["name"])
        path = review.image_path(name)
        if not path.is_file():
            return _error(404, f"{name}: the image is missing")
        content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return web.Response(body=path.read_bytes(), content_type=content_type, headers={"Cache-Control": "no-store"})

    app = web.Application(middlewares=[local_names_only, errors], client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/", index)
    app.router.add_get("/api/frames", frames)
    app.router.add_get("/api/frames/{name}", frame)
    app.router.add_put("/api/frames/{name}", put_frame)
    app.router.add_get("/images/{name}", image)
    app.router.add_post("/api/classes", add_class)
    return app


#: What review opens, for the line that refuses anything else.
FOLDERS_READ = (
    f"a folder 'livedroid mine' wrote, a labelImg folder ({IMAGES}/ and {ANNOTATIONS}/), or an export: YOLO (data.yaml, "
    "or classes.txt / obj.names), CVAT for images 1.1 (annotations.xml), COCO .json or a Label Studio JSON export"
)


def open_folder(path: str | Path, images_dir: str | Path | None = None) -> tuple[LabellingFolder, Export | None]:
    """The folder to review and, for another tool's export, the export; UserError saying why
    ``path`` is neither."""
    root = Path(path)
    if not root.exists():
        raise UserError(f"{path}: no such folder")
    if not root.is_dir():
        raise UserError(f"{path}: not a folder (give {FOLDERS_READ})")
    folder = LabellingFolder(root)
    if ((root / ANNOTATIONS).is_dir() and any((root / ANNOTATIONS).glob("*.xml"))) or (root / RECORDS).is_file():
        if images_dir is not None:
            raise UserError(f"--images is for an export whose images lie elsewhere; {path} keeps its images in {IMAGES}/")
        return folder, None
    if images_dir is not None and not Path(images_dir).is_dir():
        raise UserError(f"--images {images_dir}: no such folder")
    export = find_export(root, Path(images_dir) if images_dir is not None else None)
    if export is not None:
        return folder, export
    beside = next((f for f in (root, root / IMAGES) if f.is_dir() and any(f.glob("*.xml"))), None)
    if beside is not None:
        raise UserError(
            f"{path}: the XML files lie beside the images in {beside}; review reads labelImg's "
            f"{IMAGES}/ + {ANNOTATIONS}/ layout: move the .xml files into {root / ANNOTATIONS}"
        )
    raise UserError(f"{path}: not a labelling folder nor an export review reads: give {FOLDERS_READ}")


def start_review(folder: LabellingFolder, export: Export | None) -> Review:
    """The review of what :func:`open_folder` found (an export is read now: its bad labels refused)."""
    return Review(folder) if export is None else ExportReview(folder, export)


class _Stop:
    """The stop request of a signal. Only flags are set in the handler (it runs in the main thread,
    which may hold any lock at that moment)."""

    def __init__(self) -> None:
        self.requested = False
        self.closed = False

    def __call__(self) -> None:
        self.requested = True

    def cancel(self) -> None:
        """A second signal: stop at once, unless the server is closed already (only the lock's
        release is left then, which must not be cut short)."""
        if not self.closed:
            raise KeyboardInterrupt


def _serve(review: Review, port: int, open_browser: bool, stop: _Stop) -> None:
    """The page until ``stop`` is requested (checked in short sleeps, which signals interrupt)."""
    if stop.requested:
        return
    server = WebServer(make_app(review), LOCAL_HOST, port, option="--port", typed_with_host=False)
    server.start()
    try:
        progress = review.progress()
        print(f"livedroid: reviewing {review.describe()} ({progress['reviewed']} / {progress['total']} reviewed) "
              f"at {server.url} (Ctrl-C stops)", flush=True)
        if open_browser:
            webbrowser.open(server.url)
        while not stop.requested:
            time.sleep(0.1)
    finally:
        server.stop()


def review(folder: str | Path, port: int = DEFAULT_PORT, open_browser: bool = False,
           images_dir: str | Path | None = None) -> int:
    """Serve the review page of ``folder`` until Ctrl-C or SIGTERM; 130 then, as ``run`` and
    ``serve`` (every change is saved as it is made, so the stop loses nothing). ``images_dir``:
    where an export's images are (Label Studio's export holds none)."""
    port_number(str(port), "--port")
    labelling, export = open_folder(folder, images_dir)
    stop = _Stop()
    # the signals are caught from here on, so that the lock is always released
    signals = StopOnSignals(stop, stop.cancel, finishing="closing the review (every change is already saved)")
    with signals, FolderLock(labelling.root, "review", advice="stop that review first (Ctrl-C in its terminal)"):
        state = start_review(labelling, export)
        if not state.names:
            what = f"no image {export.file} names is found" if export else f"no {', '.join(CONTENT_TYPES)} files in {IMAGES}/"
            raise UserError(f"{folder}: no images to review ({what})")
        if state.orphans:
            log.warning("%s: %d XML file(s) without an image in %s/ or %s/, left out: %s%s",
                        labelling.root / ANNOTATIONS, len(state.orphans), IMAGES, REJECTED, ", ".join(state.orphans[:5]),
                        " …" if len(state.orphans) > 5 else "")
        state.repair()
        _serve(state, port, open_browser, stop)
        stop.closed = True
        progress = state.progress()
        print(f"livedroid: review closed ({progress['reviewed']} / {progress['total']} reviewed)", flush=True)
    return 130 if stop.requested else 0
