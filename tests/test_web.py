"""The web helper ``serve`` and ``review`` share (livedroid/web.py), in process: the addresses a
user types, the one line of a port in use, the Host guard against DNS rebinding on both apps."""

from __future__ import annotations

import asyncio
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from livedroid.errors import UserError
from livedroid.web import WebServer, parse_address, port_number

BAD_FORM = "expected HOST:PORT, HOST, :PORT or PORT (IPv6 in brackets: [::1]:8080)"
BAD_PORT = "expected a port number 0-65535 (0: any free one)"


@pytest.mark.parametrize("typed, address", [
    ("0.0.0.0:8081", ("0.0.0.0", 8081)),
    ("localhost:0", ("localhost", 0)),
    ("cams.lan", ("cams.lan", 8080)),
    (":9000", ("127.0.0.1", 9000)),
    ("9000", ("127.0.0.1", 9000)),  # a port alone (before: taken as a host named 9000)
    ("[::1]:8082", ("::1", 8082)),
    ("[::1]", ("::1", 8080)),
    ("::1", ("::1", 8080)),  # before: host ':', port 1
])
def test_addresses_as_typed(typed: str, address: tuple[str, int]) -> None:
    assert parse_address(typed, 8080, "--http") == address


@pytest.mark.parametrize("typed, says", [
    ("127.0.0.1:http", f"--http 127.0.0.1:http: {BAD_PORT}"),
    ("127.0.0.1:65536", f"--http 127.0.0.1:65536: {BAD_PORT}"),
    ("127.0.0.1:", f"--http 127.0.0.1:: {BAD_PORT}"),
    ("[::1", f"--http [::1: {BAD_FORM}"),
    ("[::1]8080", f"--http [::1]8080: {BAD_FORM}"),
    ("[cams.lan]:80", f"--http [cams.lan]:80: {BAD_FORM}"),
    ("http://cams.lan:80", f"--http http://cams.lan:80: {BAD_FORM}"),
    ("-1", f"--http -1: {BAD_FORM}"),
])
def test_a_bad_address_is_one_line_naming_the_option(typed: str, says: str) -> None:
    with pytest.raises(UserError) as raised:
        parse_address(typed, 8080, "--http")
    assert str(raised.value) == says


def test_a_port_alone_is_checked_with_the_same_words() -> None:
    assert port_number("8765", "--port") == 8765
    for typed in ("-1", "65536", "x"):
        with pytest.raises(UserError, match=f"^--port {typed}: {BAD_PORT}$".replace("(", r"\(").replace(")", r"\)")):
            port_number(typed, "--port")


async def _hello(_request: web.Request) -> web.Response:
    return web.json_response({"hello": True})


def hello() -> web.Application:
    app = web.Application()
    app.router.add_get("/", _hello)
    return app


@pytest.mark.parametrize("option, typed_with_host, line", [
    ("--http", True, "--http 127.0.0.1:{busy}: the port is in use (pick another, or --http 127.0.0.1:0 for any free one)"),
    ("--port", False, "--port {busy}: the port is in use (pick another, or --port 0 for any free one)"),
], ids=["serve", "review"])
def test_a_port_in_use_is_the_same_line_in_both_commands(option: str, typed_with_host: bool, line: str) -> None:
    threads = threading.active_count()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        server = WebServer(hello(), "127.0.0.1", busy, option=option, typed_with_host=typed_with_host)
        with pytest.raises(UserError) as raised:
            server.start()
    assert str(raised.value) == line.format(busy=busy)
    assert threading.active_count() == threads  # nothing left running


def test_an_address_not_of_this_machine_cannot_be_listened_on_in_one_line() -> None:
    server = WebServer(hello(), "192.0.2.1", 8080, option="--http")  # TEST-NET-1: no machine's own
    with pytest.raises(UserError, match=r"^--http 192\.0\.2\.1:8080: cannot listen \(.+\)$"):
        server.start()


def test_a_server_binds_at_once_serves_and_stops_twice_safely() -> None:
    server = WebServer(hello(), "127.0.0.1", 0, option="--port", typed_with_host=False)
    server.stop()  # never started: nothing to do
    server.start()
    try:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}/"
        with urllib.request.urlopen(server.url, timeout=5) as response:
            assert response.read() == b'{"hello": true}'
    finally:
        server.stop()
    server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2)


def review_app(tmp_path: Path) -> web.Application:
    from livedroid.labelling.dataset import LabellingFolder
    from livedroid.labelling.review import Review, make_app
    from tests.labelling.test_review import copy_star_wars

    return make_app(Review(LabellingFolder(copy_star_wars(tmp_path / "droids", ["BB-8_1.jpg"]))))


def serve_app(_tmp_path: Path) -> web.Application:
    from livedroid.service.cameras import CameraService
    from livedroid.service.config import ServiceConfig
    from livedroid.service.events import EventHub
    from livedroid.service.http import HttpServer

    return HttpServer(CameraService(ServiceConfig(cameras=[]), EventHub()), "127.0.0.1", 0).app()


@pytest.mark.parametrize("make_app, path", [(review_app, "/api/frames"), (serve_app, "/api/stats")], ids=["review", "serve"])
def test_a_foreign_host_is_refused_dns_rebinding(tmp_path: Path, make_app, path: str) -> None:
    """A page on this machine answers its own names only: another site whose name resolves to
    127.0.0.1 gets 403. Before: serve answered any Host."""

    async def statuses() -> tuple[int, list[tuple[int, dict]]]:
        async with TestClient(TestServer(make_app(tmp_path))) as client:
            answers = []
            for host in (f"127.0.0.1:{client.port}", f"localhost:{client.port}", "LOCALHOST", f"[::1]:{client.port}",
                         f"evil.example:{client.port}", "127.0.0.1.evil.example", "localhost.evil.example:80"):
                response = await client.get(path, headers={"Host": host})
                answers.append((response.status, await response.json()))
            return client.port, answers

    port, answers = asyncio.run(statuses())
    assert [status for status, _ in answers] == [200] * 4 + [403] * 3
    assert answers[4][1] == {"error": f"Host 'evil.example:{port}': open the page at http://127.0.0.1:{port}/"}
