"""The HTTP side under hostile or careless clients, against a real ``livedroid serve``: viewers
that open and drop (of an offline camera, which sends no picture to fail on), viewers reset
mid-write, an Authorization header that is not text; and every JSON strict."""

from __future__ import annotations

import json
import math
import os
import socket
import struct
import time
from pathlib import Path

import pytest

from livedroid.service import strict_json
from tests.conftest import free_port, write_clip
from tests.service.serving import Served

TOKEN = "t0ken-for-http"
VIEWERS = 300


def request(served: Served, path: str, *, authorization: bytes | None = None) -> socket.socket:
    """A raw HTTP/1.1 GET, sent; the caller reads and closes."""
    host, port = served.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    connection = socket.create_connection((host, int(port)), timeout=10)
    auth = b"Authorization: " + (authorization if authorization is not None else f"Bearer {TOKEN}".encode()) + b"\r\n"
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n".encode() + auth + b"Connection: close\r\n\r\n")
    return connection


def read_headers(connection: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, all threads, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def viewers(served: Served) -> int:
    return served.json("/api/stats")["http"]["mjpeg_viewers"]


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """One camera that never answers (nothing listens on its port), with a token."""
    served = Served(f"rtsp://127.0.0.1:{free_port()}/nobody", "--name", "gone", "--http", "127.0.0.1:0",
                    "--connect-timeout", "1", cwd=tmp_path_factory.mktemp("offline"), token=TOKEN)
    try:
        yield served
    finally:
        served.kill()


def test_dropped_viewers_of_an_offline_camera_are_noticed_and_cost_nothing(offline: Served) -> None:
    """Before: the handlers of 1,200 dropped viewers polled on for ever (26 % CPU); here 300 of them
    never left (mjpeg_viewers stayed 300)."""
    opened = [request(offline, "/api/cameras/gone/mjpeg") for _ in range(VIEWERS)]
    for connection in opened:
        assert b" 200 " in read_headers(connection).split(b"\r\n", 1)[0]
    offline.wait_for(lambda: viewers(offline) == VIEWERS, 10, f"{VIEWERS} viewers counted")
    for connection in opened:
        connection.close()
    offline.wait_for(lambda: viewers(offline) == 0, 10, "the viewer count back to 0")
    time.sleep(1)
    began, used = time.monotonic(), cpu_seconds(offline.process.pid)
    time.sleep(4)
    share = (cpu_seconds(offline.process.pid) - used) / (time.monotonic() - began)
    assert share < 0.03, f"{share:.1%} of a core with no viewers and an offline camera"


def test_an_authorization_header_that_is_not_text_is_401(offline: Served) -> None:
    """Before: a 500 with a traceback on every such request (the header did not encode)."""
    for header in (b"Bearer \xff\xfe\x80", b"\xc3\x28", b"Bearer " + TOKEN.encode() + b"\xff"):
        connection = request(offline, "/api/stats", authorization=header)
        status = read_headers(connection).split(b"\r\n", 1)[0]
        connection.close()
        assert b" 401 " in status, (header, status)
    assert offline.json("/api/stats")["cameras"]["gone"]["state"] != "live"
    assert "Traceback" not in offline.stderr


def test_viewers_reset_mid_write_are_let_go_quietly(tmp_path: Path) -> None:
    """Viewers that reset the connection (RST) while pictures are being written: no traceback."""
    clip = write_clip(tmp_path / "demo.mp4", frames=60, size=(640, 360), fps=15, audio=None)
    served = Served(str(clip), "--loop", "--name", "demo", "--http", "127.0.0.1:0", cwd=tmp_path, token=TOKEN)
    try:
        served.wait_for(lambda: served.stats()["demo"]["frames_processed"] >= 3, 90, "pictures")
        for _ in range(20):
            connection = request(served, "/api/cameras/demo/mjpeg")
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            read_headers(connection)
            connection.recv(1000)
            time.sleep(0.3)  # pictures keep coming: the server is writing when the reset arrives
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()
        served.wait_for(lambda: viewers(served) == 0, 10, "the viewer count back to 0")
        time.sleep(1)
        assert "Traceback" not in served.stderr and "Error" not in served.stderr, served.stderr
        assert served.stop() == 130
    finally:
        served.kill()


def test_json_is_strict_non_finite_figures_are_null() -> None:
    text = strict_json.dumps({"fps": math.nan, "p": [math.inf, 1.5, {"x": -math.inf}], "n": 3, "ok": True})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) == {
        "fps": None, "p": [None, 1.5, {"x": None}], "n": 3, "ok": True}
