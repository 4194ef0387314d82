"""The review API in process (aiohttp's test client): its bounds, and adding a class."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from livedroid.labelling.dataset import LabellingFolder
from livedroid.labelling.review import MAX_BOXES, Review, make_app
from livedroid.labels import load_labels
from tests.labelling.test_review import LABEL_MAP, mined_folder

FRAME = "/api/frames/BB-8_12.jpg"


def call(folder: Path, requests: list[tuple[str, str, bytes | str | None]]) -> list[tuple[int, dict, float]]:
    """(status, JSON body, seconds) of each request, sent in order to the app of ``folder`` served in process."""

    async def send() -> list[tuple[int, dict, float]]:
        async with TestClient(TestServer(make_app(Review(LabellingFolder(folder))))) as client:
            answers = []
            for method, path, body in requests:
                began = time.monotonic()
                response = await client.request(method, path, data=body, headers={"Content-Type": "application/json"})
                answers.append((response.status, await response.json(content_type=None), time.monotonic() - began))
            return answers

    return asyncio.run(send())


def boxes(count: int) -> str:
    return json.dumps({"boxes": [{"label": "bb8", "box": [1, 1, 20 + i % 50, 20]} for i in range(count)]})


def test_bodies_over_the_bounds_are_refused_in_one_line_at_once(tmp_path: Path) -> None:
    folder = mined_folder(tmp_path / "mined")
    xml = (folder / "annotations" / "BB-8_12.xml").read_bytes()
    deep = "[" * 100_000 + "]" * 100_000
    shallow_but_nested = '{"boxes": ' + "[" * 20 + "]" * 20 + "}"
    answers = call(folder, [
        ("PUT", FRAME, deep),
        ("PUT", FRAME, shallow_but_nested),
        ("PUT", FRAME, boxes(80_000)),  # 3.5 MB
        ("PUT", FRAME, boxes(MAX_BOXES + 1)),
        ("POST", "/api/classes", json.dumps({"name": "x" * 101})),
        ("PUT", FRAME, boxes(MAX_BOXES)),  # the most a frame may hold: saved
    ])
    for (status, body, seconds), expected, words in zip(answers, (400, 400, 413, 400, 400), (
            "nests deeper than 8", "nests deeper than 8", "larger than 1024 KiB", f"at most {MAX_BOXES} a frame",
            "at most 100 printable")):
        assert status == expected and words in body["error"] and "\n" not in body["error"], (status, body)
        assert seconds < 1.0, seconds
    assert answers[-1][0] == 200 and len(answers[-1][1]["boxes"]) == MAX_BOXES
    assert answers[-1][2] < 3.0, answers[-1][2]
    assert xml != (folder / "annotations" / "BB-8_12.xml").read_bytes()
    assert load_labels(folder / "label_map.pbtxt") == LABEL_MAP


def test_a_class_added_by_name_reaches_the_label_map_and_coco(tmp_path: Path) -> None:
    folder = mined_folder(tmp_path / "mined")
    r2 = json.dumps({"boxes": [{"label": "R2-D2", "box": [10, 10, 200, 200]}], "state": "edited"})
    answers = call(folder, [
        ("PUT", FRAME, r2),  # not in the label map yet
        ("POST", "/api/classes", json.dumps({"name": " R2-D2 "})),
        ("POST", "/api/classes", json.dumps({"name": "R2-D2"})),  # twice: kept once
        ("PUT", FRAME, r2),
        ("GET", "/api/frames", None),
    ])
    assert answers[0][0] == 400 and "'R2-D2' is not in the label map" in answers[0][1]["error"]
    expected = [{"id": 1, "name": "bb8"}, {"id": 2, "name": "r2d2"}, {"id": 3, "name": "R2-D2"}]
    assert answers[1][:2] == (200, {"classes": expected}) and answers[2][:2] == (200, {"classes": expected})
    assert answers[3][0] == 200 and answers[3][1]["boxes"][0]["label"] == "R2-D2"
    assert answers[4][1]["classes"] == expected
    assert load_labels(folder / "label_map.pbtxt") == {1: "bb8", 2: "r2d2", 3: "R2-D2"}
    coco = json.loads((folder / "coco.json").read_text())
    assert {c["id"]: c["name"] for c in coco["categories"]} == {1: "bb8", 2: "r2d2", 3: "R2-D2"}
    frame_id = next(i["id"] for i in coco["images"] if i["file_name"] == "BB-8_12.jpg")
    assert [a["category_id"] for a in coco["annotations"] if a["image_id"] == frame_id] == [3]
