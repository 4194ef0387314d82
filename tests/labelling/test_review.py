"""``livedroid review`` as a user runs it: the command in a subprocess with a bare environment, its
page driven with the mouse and the keys in Debian's chromium (headless, through Playwright), and
the folder checked afterwards, file by file, for exactly the changes made on the page. The API's
answers alone are checked on the app served in this process (the same server, no process to start)."""

from __future__ import annotations

import http.client
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from livedroid.labels import load_labels
from tests.browser import chromium
from tests.conftest import shared_path

# The frames of the mined-like folder, in mined order, and what the page does to each.
ACCEPT, MOVE, RESIZE, RELABEL, REDRAW, REJECT, SKIP = (
    "BB-8_12.jpg", "BB-8_10.jpg", "BB-8_15.jpg", "R2-D2_10.jpg", "BB-8_18.jpg", "R2-D2_13.jpg", "BB-8_26.jpg")
FRAMES = [ACCEPT, MOVE, RESIZE, RELABEL, REDRAW, REJECT, SKIP]
LABEL_MAP = {1: "bb8", 2: "r2d2"}  # the names the star-wars XML files use


# The folders ------------------------------------------------------------------------------------


def copy_star_wars(root: Path, names: list[str]) -> Path:
    """``names`` (images and their XML) of ../shared/datasets/star-wars, copied into ``root``."""
    source = shared_path("datasets/star-wars")
    for folder in ("images", "annotations"):
        (root / folder).mkdir(parents=True)
    for name in names:
        stem = Path(name).stem
        shutil.copyfile(source / "images" / name, root / "images" / name)
        shutil.copyfile(source / "annotations" / f"{stem}.xml", root / "annotations" / f"{stem}.xml")
    return root


def mined_folder(root: Path) -> Path:
    """What ``livedroid mine`` writes, made of star-wars photos: images, XML, label map, records, COCO."""
    from livedroid.labelling.dataset import LabellingFolder
    from livedroid.labels import format_label_map

    copy_star_wars(root, FRAMES)
    (root / "label_map.pbtxt").write_text(format_label_map(LABEL_MAP))
    records = [{"image": name, "source": "droids.mp4", "frame": 10 * number, "timestamp": number / 2,
                "reasons": [f"test reason {number}"], "score": 0.5} for number, name in enumerate(FRAMES)]
    (root / "mined.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    LabellingFolder(root).write_coco()
    return root


def read_objects(path: Path) -> list[tuple[str, list[float], str]]:
    """(name, [xmin, ymin, xmax, ymax], truncated) of each object of a VOC XML file."""
    root = ET.parse(path).getroot()
    return [
        (obj.findtext("name"), [float(obj.findtext(f"bndbox/{tag}")) for tag in ("xmin", "ymin", "xmax", "ymax")],
         obj.findtext("truncated"))
        for obj in root.findall("object")
    ]


# The command ------------------------------------------------------------------------------------


def bare_env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}


def run_review(folder: Path, *args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livedroid", "review", str(folder), *args], cwd=home,
                          env=bare_env(home), capture_output=True, text=True, timeout=60)


class Client:
    """Requests to a review page listening on 127.0.0.1:``port``."""

    port: int

    def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        """One request, the path sent exactly as given (no client-side clean-up of ``..``)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = None if body is None else json.dumps(body).encode()
            connection.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def json(self, method: str, path: str, body: object = None) -> dict:
        status, data = self.request(method, path, body)
        assert status == 200, (status, data)
        return json.loads(data)


class Server(Client):
    """``livedroid review DIR --port 0`` in a subprocess, with the URL it printed."""

    def __init__(self, folder: Path, home: Path) -> None:
        self.folder = folder
        self.process = subprocess.Popen(
            [sys.executable, "-m", "livedroid", "review", str(folder), "--port", "0"], cwd=home,
            env=bare_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.line = self._read_line(timeout=60)
        found = re.search(r" at (http://127\.0\.0\.1:(\d+)/) ", self.line)
        if not found:
            self.stop()
            raise AssertionError(f"no URL printed: {self.line!r}, stderr: {self.process.stderr.read()}")
        self.url, self.port = found.group(1), int(found.group(2))

    def _read_line(self, timeout: float) -> str:
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                return ""
        return self.process.stdout.readline()

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        """Stop it as a user does (Ctrl-C, or SIGTERM); its exit status and stderr."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode, self.process.stderr.read()


class Served(Client):
    """The review app of ``folder`` served by this process on a free port, as the command serves it."""

    def __init__(self, folder: Path) -> None:
        from livedroid.labelling.dataset import LabellingFolder
        from livedroid.labelling.review import Review, make_app
        from livedroid.web import WebServer

        self.server = WebServer(make_app(Review(LabellingFolder(folder))), "127.0.0.1", 0, option="--port",
                                typed_with_host=False)
        self.server.start()
        self.port = self.server.port


@pytest.fixture
def server_of():
    servers: list[Server] = []

    def start(folder: Path, home: Path) -> Server:
        servers.append(Server(folder, home))
        return servers[-1]

    yield start
    for server in servers:
        server.stop(signal.SIGKILL)


@pytest.fixture
def served_here():
    """``served_here(folder)``: the folder's review app served in this process, stopped afterwards."""
    servers: list[Served] = []

    def start(folder: Path) -> Served:
        servers.append(Served(folder))
        return servers[-1]

    yield start
    for served in servers:
        served.server.stop()


# The page in a browser -----------------------------------------------------------------------------


class Page:
    """The review page, driven as a person does: mouse on the canvas, keys on the page."""

    def __init__(self, page) -> None:
        self.page = page

    def settle(self, frame: str | None = None) -> None:
        """Wait for every change to be saved (and ``frame`` to be shown)."""
        self.page.wait_for_function("window.review && window.review.idle()", timeout=15000)
        if frame is not None:
            self.page.wait_for_function(f"document.getElementById('canvas').dataset.frame === {json.dumps(frame)}",
                                        timeout=15000)
            self.page.wait_for_function("window.review.idle()", timeout=15000)
        status = self.page.inner_text("#status")
        assert "not saved" not in status and "cannot" not in status, status

    def geometry(self) -> tuple[float, float, float]:
        """The canvas' left and top on the screen, and screen pixels per image pixel."""
        box = self.page.locator("#canvas").bounding_box()
        scale = float(self.page.locator("#canvas").get_attribute("data-scale"))
        return box["x"], box["y"], scale

    def at(self, x: float, y: float) -> tuple[float, float]:
        """Image pixel (x, y) on the screen."""
        left, top, scale = self.geometry()
        return left + x * scale, top + y * scale

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        self.page.mouse.move(*start)
        self.page.mouse.down()
        self.page.mouse.move(*end, steps=8)
        self.page.mouse.up()

    def click(self, x: float, y: float) -> None:
        self.page.mouse.click(*self.at(x, y))

    def key(self, key: str, then: str | None = None) -> None:
        self.page.keyboard.press(key)
        self.settle(then)


def test_the_page_accepts_moves_resizes_relabels_deletes_draws_adds_a_class_rejects_and_skips(tmp_path: Path, server_of) -> None:
    folder = mined_folder(tmp_path / "mined")
    original = {p.name: p.read_bytes() for p in (folder / "annotations").glob("*.xml")}
    before = {Path(n).stem: read_objects(folder / "annotations" / f"{Path(n).stem}.xml")[0][1] for n in FRAMES}
    server = server_of(folder, tmp_path)
    assert "(0 / 7 reviewed)" in server.line
    with chromium() as browser:
        page = Page(browser.new_page(viewport={"width": 1280, "height": 900}))
        errors: list[str] = []
        page.page.on("pageerror", lambda error: errors.append(str(error)))
        page.page.goto(server.url)
        page.settle(ACCEPT)
        assert page.page.inner_text("#progress") == "0 / 7 reviewed"
        assert "test reason 0" in page.page.inner_text("#reasons")
        keys = page.page.inner_text("table.keys")
        for documented in ("accept", "skip", "reject", "delete", "draw", "resize"):
            assert documented in keys

        page.key("a", then=MOVE)  # accepted as it is
        assert page.page.inner_text("#progress") == "1 / 7 reviewed"

        # move: drag from inside the box, 60 screen pixels right and 40 up
        x1, y1, x2, y2 = before["BB-8_10"]
        _, _, scale_move = page.geometry()
        start = page.at((x1 + x2) / 2, (y1 + y2) / 2)
        page.drag(start, (start[0] + 60, start[1] - 40))
        page.settle()
        page.key("Enter", then=RESIZE)

        # resize: the bottom-right corner, 50 screen pixels left and 40 up
        x1, y1, x2, y2 = before["BB-8_15"]
        _, _, scale_resize = page.geometry()
        corner = page.at(x2, y2)
        page.drag(corner, (corner[0] - 50, corner[1] - 40))
        page.settle()
        page.key("a", then=RELABEL)

        # relabel: select the r2d2 box, class 1 (bb8)
        x1, y1, x2, y2 = before["R2-D2_10"]
        page.click((x1 + x2) / 2, (y1 + y2) / 2)
        page.key("1")
        page.key("a", then=REDRAW)

        # delete the box, pick class 2 with nothing selected, draw a new box on the empty image
        x1, y1, x2, y2 = before["BB-8_18"]
        page.click((x1 + x2) / 2, (y1 + y2) / 2)
        page.key("Delete")
        page.key("2")
        _, _, scale_draw = page.geometry()
        page.drag(page.at(40, 30), page.at(300, 250))
        page.settle()
        assert "r2d2" in page.page.inner_text("#boxes")
        # a class added by name (its letters press no key of the page: no "a"ccept), then drawn with
        page.page.locator("#new-class").press_sequentially("astromech")
        page.page.press("#new-class", "Enter")
        page.page.wait_for_function("window.review.state.currentClass === 'astromech'", timeout=15000)
        assert page.page.input_value("#class-select") == "astromech"
        assert "3: astromech" in page.page.inner_text("#class-select")
        assert page.page.evaluate("document.getElementById('canvas').dataset.frame") == REDRAW
        assert page.page.inner_text("#progress") == "5 / 7 reviewed"  # the edits so far, no accept
        page.drag(page.at(340, 40), page.at(480, 200))
        page.settle()
        page.key("a", then=REJECT)

        page.key("r", then=SKIP)
        page.key("s")
        assert page.page.inner_text("#progress") == "6 / 7 reviewed"
        assert "last frame" in page.page.inner_text("#status")
        page.key("p", then=REJECT)  # back to the rejected frame: its image from rejected/, and a note
        assert page.page.is_visible("#rejected-note") and page.page.inner_text("#state") == "rejected"
        assert page.page.evaluate("window.review.state.image.naturalWidth") > 0
        assert not errors, errors
    status, stderr = server.stop(signal.SIGINT)
    assert status == 130, stderr
    assert not (folder / ".livedroid.lock").exists()

    # review.json: every decision
    assert json.loads((folder / "review.json").read_text()) == {
        ACCEPT: "accepted", MOVE: "edited", RESIZE: "edited", RELABEL: "edited", REDRAW: "edited",
        REJECT: "rejected", SKIP: "skipped",
    }
    annotations = folder / "annotations"
    # accepted and skipped as they were: the files untouched, byte for byte
    for name in (ACCEPT, SKIP):
        xml = f"{Path(name).stem}.xml"
        assert (annotations / xml).read_bytes() == original[xml]

    def only_box(name: str) -> tuple[str, list[float], str]:
        objects = read_objects(annotations / f"{Path(name).stem}.xml")
        assert len(objects) == 1, objects
        return objects[0]

    # moved by the dragged amount, in image pixels; its size and other fields kept
    label, box, truncated = only_box(MOVE)
    x1, y1, x2, y2 = before["BB-8_10"]
    dx, dy = 60 / scale_move, -40 / scale_move
    assert label == "bb8" and truncated == "0"
    assert box == pytest.approx([x1 + dx, y1 + dy, x2 + dx, y2 + dy], abs=2)
    assert box[2] - box[0] == pytest.approx(x2 - x1, abs=1) and box[3] - box[1] == pytest.approx(y2 - y1, abs=1)
    moved_root = ET.parse(annotations / "BB-8_10.xml").getroot()
    assert moved_root.findtext("path") == ET.fromstring(original["BB-8_10.xml"]).findtext("path")

    # resized by its corner: the opposite corner stays
    label, box, _ = only_box(RESIZE)
    x1, y1, x2, y2 = before["BB-8_15"]
    assert label == "bb8"
    assert box == pytest.approx([x1, y1, x2 - 50 / scale_resize, y2 - 40 / scale_resize], abs=2)

    # relabelled, the box where it was
    assert only_box(RELABEL)[:2] == ("bb8", before["R2-D2_10"])

    # the old box deleted, the two drawn in its place: class 2, and the class added by name
    (label, box, truncated), (added, added_box, _) = read_objects(annotations / f"{Path(REDRAW).stem}.xml")
    assert (label, truncated, added) == ("r2d2", "0", "astromech")
    assert box == pytest.approx([40, 30, 300, 250], abs=2 / scale_draw + 1)
    assert added_box == pytest.approx([340, 40, 480, 200], abs=2 / scale_draw + 1)
    assert load_labels(folder / "label_map.pbtxt") == {**LABEL_MAP, 3: "astromech"}

    # rejected: out of images/ and annotations/, kept in rejected/ where no dataset reader looks
    stem = Path(REJECT).stem
    assert not (folder / "images" / REJECT).exists() and not (annotations / f"{stem}.xml").exists()
    assert (folder / "rejected" / REJECT).is_file()
    assert (folder / "rejected" / f"{stem}.xml.rejected").read_bytes() == original[f"{stem}.xml"]
    assert not list(folder.rglob("rejected/*.xml"))

    # coco.json: the same boxes as the XML files, the rejected frame absent
    coco = json.loads((folder / "coco.json").read_text())
    assert sorted(image["file_name"] for image in coco["images"]) == sorted(set(FRAMES) - {REJECT})
    classes = {**LABEL_MAP, 3: "astromech"}
    assert {c["id"]: c["name"] for c in coco["categories"]} == classes
    ids = {name: number for number, name in classes.items()}
    expected = {name: [(ids[label], [x1, y1, x2 - x1, y2 - y1])
                       for label, (x1, y1, x2, y2), _ in read_objects(annotations / f"{Path(name).stem}.xml")]
                for name in set(FRAMES) - {REJECT}}
    found = {image["file_name"]: [] for image in coco["images"]}
    names = {image["id"]: image["file_name"] for image in coco["images"]}
    for annotation in coco["annotations"]:
        found[names[annotation["image_id"]]].append((annotation["category_id"], annotation["bbox"]))
    assert found == expected

    # nothing half-written left behind
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_a_labelimg_folder_is_reviewed_in_place_keeping_its_own_fields(tmp_path: Path, served_here) -> None:
    """A plain labelImg folder (images/, annotations/, its own label map): the XML files keep what
    labelImg wrote; only the changed box changes; no coco.json appears."""
    folder = copy_star_wars(tmp_path / "droids", ["BB-8_1.jpg", "R2-D2_1.jpg"])
    shutil.copyfile(shared_path("datasets/star-wars/label_map.pbtxt"), folder / "label_map.pbtxt")
    original = (folder / "annotations" / "R2-D2_1.xml").read_bytes()
    server = served_here(folder)
    frames = server.json("GET", "/api/frames")
    assert [f["name"] for f in frames["frames"]] == ["BB-8_1.jpg", "R2-D2_1.jpg"]
    assert [c["name"] for c in frames["classes"]] == ["BB-8", "R2-D2"]
    frame = server.json("GET", "/api/frames/R2-D2_1.jpg")
    assert frame["boxes"] == [{"label": "r2d2", "box": [230.0, 1.0, 493.0, 294.0], "ref": 0}]
    # accepted as it is, with its hand-typed "r2d2": the file untouched
    accepted = server.json("PUT", "/api/frames/R2-D2_1.jpg", {"boxes": frame["boxes"], "state": "accepted"})
    assert accepted["state"] == "accepted"
    assert (folder / "annotations" / "R2-D2_1.xml").read_bytes() == original
    # relabelled to the label map's name: only <name> changes
    edit = [dict(frame["boxes"][0], label="R2-D2")]
    assert server.json("PUT", "/api/frames/R2-D2_1.jpg", {"boxes": edit})["state"] == "edited"
    relabelled = original.replace(b"<name>r2d2</name>", b"<name>R2-D2</name>")
    assert (folder / "annotations" / "R2-D2_1.xml").read_bytes() == relabelled
    # a label of neither the label map nor the file is refused
    ewok = {"boxes": [{"label": "ewok", "box": [1, 1, 50, 50]}]}
    status, body = server.request("PUT", "/api/frames/BB-8_1.jpg", ewok)
    assert status == 400 and b"ewok" in body
    # rejected, then accepted again: back as it was
    bb8 = (folder / "annotations" / "BB-8_1.xml").read_bytes()
    assert server.json("PUT", "/api/frames/BB-8_1.jpg", {"state": "rejected"})["state"] == "rejected"
    assert not (folder / "images" / "BB-8_1.jpg").exists() and not (folder / "annotations" / "BB-8_1.xml").exists()
    assert server.request("GET", "/images/BB-8_1.jpg")[0] == 200  # still shown, from rejected/
    assert server.json("PUT", "/api/frames/BB-8_1.jpg", {"state": "accepted"})["state"] == "accepted"
    assert (folder / "annotations" / "BB-8_1.xml").read_bytes() == bb8 and (folder / "images" / "BB-8_1.jpg").is_file()
    assert not (folder / "coco.json").exists()
    assert json.loads((folder / "review.json").read_text()) == {"BB-8_1.jpg": "accepted", "R2-D2_1.jpg": "edited"}
    assert server.json("GET", "/api/frames")["progress"] == {"reviewed": 2, "total": 2}


def test_paths_out_of_the_folder_are_refused(tmp_path: Path, served_here) -> None:
    folder = copy_star_wars(tmp_path / "droids", ["BB-8_1.jpg"])
    (tmp_path / "secret.txt").write_text("not for the page")
    server = served_here(folder)
    for path in ("/images/..%2Fsecret.txt", "/images/..%2F..%2Fsecret.txt", "/images/%2e%2e%2fsecret.txt",
                 "/images/../../secret.txt", "/images/..", "/images/%2E%2E", "/api/frames/..%2F..%2Fsecret.txt",
                 "/api/frames/..%5csecret.txt", "/images/.livedroid.lock", "/images/..%2Fannotations%2FBB-8_1.xml",
                 "/api/frames/%00", "/images/BB-8_1.xml"):
        for method in ("GET", "PUT"):
            if method == "PUT" and path.startswith("/images/"):
                continue
            status, body = server.request(method, path, {"boxes": []} if method == "PUT" else None)
            assert status in (400, 404), (method, path, status)
            assert b"not for the page" not in body and b"<annotation>" not in body
    status, body = server.request("GET", "/images/BB-8_1.jpg")
    assert status == 200 and body[:2] == b"\xff\xd8"
    assert server.request("GET", "/api/frames")[0] == 200


def test_a_second_review_of_the_folder_is_refused_in_one_line(tmp_path: Path, server_of) -> None:
    folder = copy_star_wars(tmp_path / "droids", ["BB-8_1.jpg"])
    first = server_of(folder, tmp_path)
    second = run_review(folder, "--port", "0", home=tmp_path)
    assert second.returncode != 0
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livedroid: error: "), second.stderr
    assert f"process {first.process.pid}" in lines[0]
    assert "Traceback" not in second.stdout + second.stderr
    assert first.process.poll() is None  # the first one goes on
    assert first.request("GET", "/api/frames")[0] == 200


def test_a_stale_lock_is_taken_over_and_sigterm_releases_it(tmp_path: Path, server_of) -> None:
    folder = copy_star_wars(tmp_path / "droids", ["BB-8_1.jpg"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder / ".livedroid.lock").write_text(f"{dead.pid}\n")
    server = server_of(folder, tmp_path)
    assert (folder / ".livedroid.lock").read_text().split() == [str(server.process.pid), "review"]
    status, stderr = server.stop(signal.SIGTERM)
    assert status == 130, stderr
    assert f"process {dead.pid} is gone: taking over" in stderr
    assert "Traceback" not in stderr
    assert not (folder / ".livedroid.lock").exists()


def _empty(root: Path) -> None:
    root.mkdir()


def _not_a_dataset(root: Path) -> None:
    root.mkdir()
    (root / "notes.txt").write_text("holiday photos")
    (root / "photo.jpg").write_bytes(b"\xff\xd8 not really")


def _xml_without_images(root: Path) -> None:
    copy_star_wars(root, ["BB-8_1.jpg"])
    (root / "images" / "BB-8_1.jpg").unlink()


def _a_file(root: Path) -> None:
    root.write_text("a file, not a folder")


@pytest.mark.parametrize("make, says", [
    (_empty, "not a labelling folder"),
    (_not_a_dataset, "not a labelling folder"),
    (_xml_without_images, "no images to review"),
    (_a_file, "not a folder"),
    (None, "no such folder"),
], ids=["empty", "not-a-dataset", "xml-without-images", "a-file", "missing"])
@pytest.mark.timeout(120)  # should a check go, the page would start and serve on: fail instead
def test_a_folder_that_is_not_a_dataset_gets_one_line(tmp_path: Path, make, says: str, livedroid_main, monkeypatch) -> None:
    target = tmp_path / "folder"
    if make is not None:
        make(target)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = livedroid_main("review", str(target), "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livedroid: error: ") and says in lines[0], result.stderr
    assert result.stdout == ""
    assert not (target / ".livedroid.lock").exists()


def test_the_help_documents_the_keys(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "livedroid", "review", "--help"], env=bare_env(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for documented in ("accept", "skip", "reject", "Delete", "resize", "draw", "1-9", "--port"):
        assert documented in result.stdout
