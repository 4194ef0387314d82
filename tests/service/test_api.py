"""``serve``'s HTTP API in process, with aiohttp's test client over the app ``serve`` builds: the
token, the page, pictures and the live stream, metrics, events, recordings and their queries, and
no camera address or password in any answer. The cameras are real (a looping clip that records,
an RTSP camera with credentials that nothing answers); no process is started. The command as
users type it, end to end, is in test_serve.py; hostile raw clients in test_http.py."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer

from livedroid.service.cameras import CameraService
from livedroid.service.config import load_config
from livedroid.service.events import EventHub
from livedroid.service.http import HttpServer
from tests.conftest import free_port, shared_path, wait_for, write_clip
from tests.service.serving import decoded_frames, strict_json

TOKEN = "t0ken-for-api"
PASSWORD = "s3cr3t-api-pw"


class Answer:
    """One response, read: status, content type and body."""

    def __init__(self, status: int, kind: str, body: bytes) -> None:
        self.status, self.kind, self.body = status, kind, body

    def json(self) -> object:
        return strict_json(self.body)


def ask(http: HttpServer, *paths: str, headers: dict[str, str] | None = None) -> list[Answer]:
    """GET each path (with the token as a Bearer header unless ``headers`` is given) from the app
    served in this process; each answer read whole."""

    async def send() -> list[Answer]:
        async with TestClient(TestServer(http.app())) as client:
            answers = []
            for path in paths:
                response = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"} if headers is None else headers)
                answers.append(Answer(response.status, response.content_type, await response.read()))
            return answers

    return asyncio.run(send())


def one(http: HttpServer, path: str) -> object:
    (answer,) = ask(http, path)
    assert answer.status == 200, (path, answer.status, answer.body[:200])
    return answer.json()


@contextlib.contextmanager
def serving(cameras_yaml: Path, ready: Callable[[CameraService], object], what: str) -> Iterator[HttpServer]:
    """The cameras of ``cameras_yaml`` running in this process, their app with the token, once ``ready``."""
    service = CameraService(load_config(cameras_yaml), EventHub(),
                            timeouts={"connect_timeout": 1, "read_timeout": 5, "reconnect_timeout": 60})
    server = HttpServer(service, "127.0.0.1", 0, token=TOKEN)
    service.start()
    try:
        wait_for(lambda: ready(service), 90, what)
        yield server
    finally:
        service.cancel()
        service.wait(lambda: True)
        service.close()


@pytest.fixture(scope="module")
def http(tmp_path_factory) -> Iterator[HttpServer]:
    """demo (a looping clip recorded in one-second segments) and gone (RTSP with credentials,
    nothing listening), served with a token; running until the module's tests are done."""
    folder = tmp_path_factory.mktemp("api")
    write_clip(folder / "demo.mp4", frames=60, size=(320, 180), fps=15, audio=None)
    (folder / "cameras.yaml").write_text(
        f"recordings: {folder / 'recorded'}\ndefaults: {{detect_fps: 5}}\ncameras:\n"
        f"  - {{name: demo, source: {folder / 'demo.mp4'}, loop: true, record: true, segment_seconds: 1}}\n"
        f"  - {{name: gone, source: 'rtsp://droid:{PASSWORD}@127.0.0.1:{free_port()}/nobody'}}\n")
    with serving(folder / "cameras.yaml",
                 lambda service: len(service.recordings("demo")) >= 3 and service.stats()["cameras"]["gone"]["state"] != "starting",
                 "3 closed segments of demo, gone past its first connect") as server:
        yield server


@pytest.mark.parametrize("headers, path, status", [
    ({}, "/api/stats", 401),
    ({"Authorization": "Bearer wrong"}, "/api/stats", 401),
    ({"Authorization": f"Bearer {TOKEN}x"}, "/api/stats", 401),
    ({"Authorization": f"Bearer {TOKEN}"}, "/api/stats", 200),
    ({}, f"/api/stats?token={TOKEN}", 200),
    ({}, "/", 401),
    ({}, "/metrics", 401),
    ({}, "/api/cameras/demo/latest.jpg", 401),
    ({}, "/api/recordings", 401),
])
def test_the_token_is_asked_for_everywhere_as_header_or_query(http: HttpServer, headers: dict, path: str, status: int) -> None:
    (answer,) = ask(http, path, headers=headers)
    assert answer.status == status, answer.body
    if status == 401:
        assert "a token is needed" in answer.json()["error"]


def test_stats_page_pictures_and_metrics(http: HttpServer) -> None:
    stats, page, jpeg, idle, nobody, metrics = ask(
        http, "/api/stats", "/", "/api/cameras/demo/latest.jpg", "/api/cameras/gone/latest.jpg",
        "/api/cameras/nobody/latest.jpg", "/metrics")
    cameras = stats.json()["cameras"]
    assert set(cameras) == {"demo", "gone"}
    assert cameras["demo"]["state"] == "live" and cameras["demo"]["frames_processed"] >= 3
    assert cameras["gone"]["state"] != "live" and cameras["gone"]["frames_processed"] == 0
    assert stats.json()["inference"]["coco-ssd-mobilenet-v2"]["frames"] >= 3
    assert stats.json()["http"] == {"mjpeg_viewers": 0}

    assert page.status == 200 and page.kind == "text/html"
    assert 'data-camera="demo"' in page.body.decode() and 'data-camera="gone"' in page.body.decode()
    assert '<option value="demo">' in page.body.decode() and '<option value="gone">' not in page.body.decode()

    picture = cv2.imdecode(np.frombuffer(jpeg.body, np.uint8), cv2.IMREAD_COLOR)
    assert (jpeg.status, jpeg.kind, picture.shape) == (200, "image/jpeg", (180, 320, 3))
    assert idle.status == 503 and b"gone has no picture yet" in idle.body
    assert nobody.status == 404

    assert metrics.status == 200 and metrics.kind == "text/plain"
    text = metrics.body.decode()
    assert 'livedroid_camera_detect_fps{camera="demo"}' in text and "livedroid_camera_frames_processed_total" in text


def test_the_live_stream_sends_pictures_and_counts_its_viewer(http: HttpServer) -> None:
    async def first_picture() -> tuple[str, bytes, int]:
        async with TestClient(TestServer(http.app())) as client:
            response = await client.get("/api/cameras/demo/mjpeg", headers={"Authorization": f"Bearer {TOKEN}"})
            received = b""
            while received.count(b"\r\n\r\n") < 2 or not received.rstrip().endswith(b"\xff\xd9"):
                received += await response.content.read(65536)
                if len(received) > 10**6:
                    break
            viewers = http.mjpeg_viewers
            response.close()
            return response.headers["Content-Type"], received, viewers

    kind, received, viewers = asyncio.run(first_picture())
    assert kind.startswith("multipart/x-mixed-replace; boundary=") and viewers == 1
    head, _, rest = received.partition(b"\r\n\r\n")
    assert b"Content-Type: image/jpeg" in head
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    picture = cv2.imdecode(np.frombuffer(rest[:length], np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (180, 320, 3)
    wait_for(lambda: http.mjpeg_viewers == 0, 10, "the viewer let go")
    assert ask(http, "/api/cameras/nobody/mjpeg")[0].status == 404


def test_recordings_by_camera_and_time_range_each_playable(http: HttpServer) -> None:
    listed = one(http, "/api/recordings?camera=demo")["recordings"]
    assert len(listed) >= 3 and listed == one(http, "/api/recordings")["recordings"][:len(listed)]
    assert [row["start"] for row in listed] == sorted(row["start"] for row in listed)
    # From the second segment's start on (ISO 8601, and seconds since 1970): the first is left out.
    second = datetime.fromisoformat(listed[1]["start"])
    for start in (second.isoformat(), str(second.timestamp() + 0.01)):
        found = one(http, f"/api/recordings?{urlencode({'camera': 'demo', 'start': start})}")["recordings"]
        assert found[0] == listed[1], start
    video, *refused = ask(http, listed[0]["url"], "/api/recordings/demo/index.sqlite",
                          "/api/recordings/demo/..%2Findex.sqlite", "/api/recordings/demo/nothing.mp4",
                          "/api/recordings/nobody/" + listed[0]["url"].rsplit("/", 1)[1])
    assert video.status == 200 and video.kind == "video/mp4"
    copy = next(http.service.cameras["demo"].recorder.folder.rglob(listed[0]["url"].rsplit("/", 1)[1]))
    assert copy.read_bytes() == video.body and decoded_frames(copy) >= 1
    assert [answer.status for answer in refused] == [404] * 4


@pytest.mark.parametrize("query, status, says", [
    ("camera=nobody", 404, "no camera named 'nobody'"),
    ("start=yesterday", 400, "yesterday"),
    ("end=nan", 400, "nan"),
    ("start=inf", 400, "inf"),
])
def test_bad_recording_queries_are_one_clear_answer(http: HttpServer, query: str, status: int, says: str) -> None:
    (answer,) = ask(http, f"/api/recordings?{query}")
    assert answer.status == status and says in answer.body.decode(), answer.body


def test_events_filter_by_camera_and_limit(http: HttpServer) -> None:
    everything, nobody, limited = (answer.json()["events"] for answer in ask(
        http, "/api/events", "/api/events?camera=nobody", "/api/events?limit=1"))
    assert nobody == [] and limited == everything[:1]
    assert all(event["camera"] == "demo" for event in everything)


def test_no_answer_tells_a_cameras_address_or_password(http: HttpServer) -> None:
    for answer in ask(http, "/", "/api/stats", "/metrics", "/api/events", "/api/recordings"):
        assert answer.status == 200
        assert PASSWORD.encode() not in answer.body and b"rtsp://" not in answer.body and b"droid:" not in answer.body


def test_an_event_links_to_the_segment_that_holds_it(tmp_path: Path) -> None:
    """People walking into a zone of a recording camera: each event's ``clip`` is the URL of the
    closed segment of its moment, and it plays."""
    clip = shared_path("videos/intel_one-by-one-person-detection.mp4")
    (tmp_path / "cameras.yaml").write_text(
        f"recordings: {tmp_path / 'recordings'}\ncameras:\n"
        f"  - {{name: door, source: {clip}, loop: true, record: true, segment_seconds: 2, classes: [person],"
        " zones: {hall: {points: [[0, 0], [1, 0], [1, 1], [0, 1]], classes: [person]}}}\n")

    def linked(service: CameraService) -> list[str]:
        return [service.clip(event["camera"], at) for at, event in service.events.recent_at(100, "door")
                if service.clip(event["camera"], at)]

    with serving(tmp_path / "cameras.yaml", linked, "an event with its clip") as http:
        events = [event for event in one(http, "/api/events?camera=door")["events"] if event["clip"]]
        (video,) = ask(http, events[0]["clip"])
    assert re.fullmatch(r"/api/recordings/door/door-\d{8}-\d{6}-\d{3}\.mp4", events[0]["clip"])
    assert (video.status, video.kind) == (200, "video/mp4")
    (tmp_path / "clip.mp4").write_bytes(video.body)
    assert decoded_frames(tmp_path / "clip.mp4") >= 1
