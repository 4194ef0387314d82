"""``livedroid review DIR``: a page on 127.0.0.1 to check and correct pre-annotated frames.

The page (``review_page.html``) walks through the frames of a labelling folder (what ``mine``
writes, or a plain labelImg folder) and saves every change at once through a small JSON API:

```
GET  /api/frames            the frames in review order, the classes, the progress
GET  /api/frames/NAME       one frame: size, boxes, review state, mining record
PUT  /api/frames/NAME       {"boxes": [{"label": L, "box": [x1, y1, x2, y2]}, …], "state": S}
GET  /images/NAME           the image (from images/, or rejected/ once rejected)
```

Each PUT writes the frame's XML, ``review.json`` and ``coco.json`` (for a mined folder, or a
labelImg folder that already has one), each atomically (:mod:`livedroid.labelling.dataset`).
A lock file, ``DIR/.review.lock`` with the process id, keeps a second review of the folder out.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import math
import os
import webbrowser
from importlib import resources
from pathlib import Path

import cv2
from aiohttp import web

from livedroid.errors import UserError
from livedroid.labelling.dataset import (
    ANNOTATIONS, COCO, IMAGES, LOCK, RECORDS, REJECTED, STATES, LabelBox, LabelledImage, LabellingFolder,
    read_voc, voc_xml, write_atomic,
)
from livedroid.signals import StopOnSignals

log = logging.getLogger("livedroid")

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: States that count as reviewed (skipped means: decide later).
REVIEWED = ("accepted", "edited", "rejected")
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".bmp": "image/bmp", ".webp": "image/webp"}


class BadRequest(Exception):
    """Input the API refuses: answered with 400 and the message."""


# The lock -------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class ReviewLock:
    """``DIR/.review.lock`` holding this process' id, made with O_EXCL; a lock whose process is
    gone is taken over with a warning; removed on exit (only while it is still ours)."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK
        self.held = False

    def _create(self) -> bool:
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as error:
            raise UserError(f"cannot create {self.path}: {error.strerror or error}") from None
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        return True

    def acquire(self) -> None:
        for _ in range(3):  # another review may take a stale lock over at the same moment
            if self._create():
                self.held = True
                return
            try:
                text = self.path.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                continue
            except OSError:
                text = ""
            pid = int(text) if text.isdigit() else None
            if pid is not None and pid != os.getpid() and _alive(pid):
                raise UserError(
                    f"{self.path.parent} is being reviewed by process {pid} "
                    f"(one review per folder; if that process is not a review, delete {self.path})"
                )
            log.warning("%s: process %s is gone: taking over its stale lock", self.path, pid if pid is not None else "?")
            self.path.unlink(missing_ok=True)
        raise UserError(f"{self.path}: cannot take the lock (another review keeps taking it)")

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            if self.path.read_text(encoding="utf-8").strip() == str(os.getpid()):
                self.path.unlink()
        except OSError:
            pass

    def __enter__(self) -> "ReviewLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# The folder as the page sees it ------------------------------------------------------------------


def check_name(name: str) -> str:
    """A plain file name: no folders, no ``..``; BadRequest otherwise."""
    if not name or "/" in name or "\\" in name or ".." in name or "\x00" in name or name.startswith("."):
        raise BadRequest(f"{name!r}: not a file name of this folder")
    return name


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
        self.label_map = folder.label_map()
        self.names = self._frame_names()

    def _frame_names(self) -> list[str]:
        root = self.folder.root
        found: set[str] = set()
        for path in (root / ANNOTATIONS).glob("*.xml") if (root / ANNOTATIONS).is_dir() else ():
            found.add(self._xml_image_name(path))
        for folder in (IMAGES, REJECTED):
            if (root / folder).is_dir():
                found.update(p.name for p in (root / folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        mined = [name for name in self.records if name in found]
        return mined + sorted(found - set(mined))

    def _xml_image_name(self, path: Path) -> str:
        """The image an XML file describes: its <filename> when that file exists, else the
        image of the same stem (hand-made XML files name folders of other machines)."""
        name = Path(read_voc(path).name).name
        if self.folder.image_path(name).is_file():
            return name
        for suffix in IMAGE_SUFFIXES:
            if self.folder.image_path(path.stem + suffix).is_file():
                return path.stem + suffix
        return name

    # reading

    def known(self, name: str) -> str:
        check_name(name)
        if name not in self.names:
            raise web.HTTPNotFound(text=json.dumps({"error": f"{name}: no such frame in this folder"}),
                                   content_type="application/json")
        return name

    def classes(self) -> list[dict]:
        return [{"id": class_id, "name": name} for class_id, name in sorted(self.label_map.items())]

    def _rejected_xml(self, name: str) -> Path:
        return self.folder.root / REJECTED / (Path(name).stem + ".xml")

    def stored(self, name: str) -> LabelledImage:
        """The frame's image and boxes as saved (a rejected frame: as it was when rejected)."""
        for path in (self.folder.annotation_path(name), self._rejected_xml(name)):
            if path.is_file():
                image = read_voc(path)
                image.name = name
                break
        else:
            image = LabelledImage(name, 0, 0, [])
        if image.width <= 0 or image.height <= 0:
            pixels = cv2.imread(str(self.folder.image_path(name)), cv2.IMREAD_UNCHANGED)
            if pixels is None:
                raise UserError(f"{self.folder.image_path(name)}: not a readable image")
            image.height, image.width = pixels.shape[:2]
        return image

    def progress(self, states: dict[str, str] | None = None) -> dict:
        states = self.folder.review_states() if states is None else states
        return {"reviewed": sum(states.get(n) in REVIEWED for n in self.names), "total": len(self.names)}

    def frame(self, name: str, states: dict[str, str] | None = None) -> dict:
        states = self.folder.review_states() if states is None else states
        image = self.stored(name)
        record = self.records.get(name, {})
        return {
            "name": name,
            "index": self.names.index(name),
            "width": image.width,
            "height": image.height,
            "boxes": [box.as_dict() for box in image.boxes],
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

    def parse_boxes(self, value: object, image: LabelledImage) -> list[LabelBox]:
        if not isinstance(value, list):
            raise BadRequest('"boxes" must be a list of {"label": NAME, "box": [x1, y1, x2, y2]}')
        # labels of the label map; names already in this frame's file (a hand-made folder's
        # "bb8") may stay, so that a frame can be accepted as it is
        allowed = set(self.label_map.values()) | {box.label for box in image.boxes}
        boxes = []
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
            score = item.get("score")
            boxes.append(LabelBox(label, x1, y1, x2, y2, score if isinstance(score, (int, float)) else None))
        return boxes

    def update(self, name: str, body: object) -> dict:
        if not isinstance(body, dict):
            raise BadRequest('expected a JSON object {"boxes": [...], "state": ...}')
        requested = body.get("state")
        if requested is not None and requested not in STATES:
            raise BadRequest(f"state {requested!r}: expected one of {', '.join(STATES)} or null")
        states = self.folder.review_states()
        current = states.get(name)
        stored = self.stored(name)
        if requested == "rejected":
            if current != "rejected":
                # the boxes stay beside the image in rejected/ (no dataset reader looks there), so
                # accepting the frame later brings it back as it was
                write_atomic(self._rejected_xml(name), voc_xml(stored, folder=REJECTED))
                self.folder.reject(name)
            state = "rejected"
        else:
            boxes = self.parse_boxes(body["boxes"], stored) if "boxes" in body else stored.boxes
            changed = _key(boxes) != _key(stored.boxes)
            if changed:
                state = "edited"
            elif requested == "accepted":
                state = "edited" if current == "edited" else "accepted"
            elif requested == "skipped":
                state = current if current in REVIEWED else "skipped"
            else:
                state = current
            if state != "rejected":
                if current == "rejected":
                    self.folder.restore(name)
                    self._rejected_xml(name).unlink(missing_ok=True)
                self.folder.save_image(LabelledImage(name, stored.width, stored.height, boxes))
        if state != current:
            self.folder.write_review_state(name, state)
        if self.writes_coco and self.label_map:
            self.folder.write_coco()
        return self.frame(name)


def _key(boxes: list[LabelBox]) -> list[tuple]:
    """Boxes as the XML keeps them (whole pixels), to tell an edit from a plain accept."""
    return [(b.label, *(int(round(v)) for v in (b.x1, b.y1, b.x2, b.y2))) for b in boxes]


# The web app -------------------------------------------------------------------------------------


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


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
        try:
            body = await request.json()
        except ValueError:
            raise BadRequest("the body is not valid JSON") from None
        return web.json_response(review.update(name, body))

    async def image(request: web.Request) -> web.StreamResponse:
        name = review.known(request.match_info["name"])
        path = review.folder.image_path(name)
        if not path.is_file():
            return _error(404, f"{name}: the image is missing")
        content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return web.Response(body=path.read_bytes(), content_type=content_type, headers={"Cache-Control": "no-store"})

    app = web.Application(middlewares=[errors], client_max_size=4 * 1024 * 1024)
    app.router.add_get("/", index)
    app.router.add_get("/api/frames", frames)
    app.router.add_get("/api/frames/{name}", frame)
    app.router.add_put("/api/frames/{name}", put_frame)
    app.router.add_get("/images/{name}", image)
    return app


def open_folder(path: str | Path) -> LabellingFolder:
    """The folder to review, or UserError saying why it is not one."""
    root = Path(path)
    if not root.exists():
        raise UserError(f"{path}: no such folder")
    if not root.is_dir():
        raise UserError(f"{path}: not a folder (give a folder that 'livedroid mine' wrote, or a labelImg folder)")
    folder = LabellingFolder(root)
    has_xml = (root / ANNOTATIONS).is_dir() and any((root / ANNOTATIONS).glob("*.xml"))
    if not has_xml and not (root / RECORDS).is_file():
        raise UserError(
            f"{path}: not a labelling folder (no {ANNOTATIONS}/*.xml and no {RECORDS}): give a folder "
            "that 'livedroid mine' wrote, or a labelImg folder (images/ and annotations/)"
        )
    return folder


async def _serve(review: Review, port: int, open_browser: bool, stopping: asyncio.Event) -> None:
    runner = web.AppRunner(make_app(review), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, HOST, port).start()
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UserError(f"--port {port}: the port is in use (pick another, or --port 0 for any free one)") from None
            raise UserError(f"--port {port}: cannot listen ({error.strerror or error})") from None
        url = f"http://{HOST}:{runner.addresses[0][1]}/"
        progress = review.progress()
        print(f"livedroid: reviewing {review.folder.root} ({progress['reviewed']} / {progress['total']} reviewed) "
              f"at {url} (Ctrl-C stops)", flush=True)
        if open_browser:
            webbrowser.open(url)
        await stopping.wait()
    finally:
        await runner.cleanup()


def review(folder: str | Path, port: int = DEFAULT_PORT, open_browser: bool = False) -> int:
    """Serve the review page of ``folder`` until Ctrl-C or SIGTERM; 0 on a clean stop."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: give a port number 0-65535 (0: any free one)")
    labelling = open_folder(folder)
    with ReviewLock(labelling.root):
        state = Review(labelling)
        if not state.names:
            raise UserError(f"{folder}: no images to review (images/ is empty)")

        async def main() -> None:
            loop = asyncio.get_running_loop()
            stopping = asyncio.Event()
            with StopOnSignals(lambda: loop.call_soon_threadsafe(stopping.set),
                               finishing="closing the review (every change is already saved)"):
                await _serve(state, port, open_browser, stopping)

        asyncio.run(main())
    return 0
