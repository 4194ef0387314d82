"""What ``serve`` and ``review`` share to put an aiohttp app on the network: the address a user
types, the guard of a page bound to this machine against other sites (DNS rebinding), and a
server on its own thread and event loop that binds at once (a port in use is one line before
anything else starts) and stops in one call. One module, so that the same mistake reads the same
in both commands."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
import threading

from aiohttp import web

from livedroid.errors import UserError

#: The host a page listens on unless told otherwise: this machine only.
LOCAL_HOST = "127.0.0.1"
#: Names a browser uses for this machine: a page bound here answers requests addressed to them only.
LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
#: How long a stop waits for open requests (a live MJPEG view never ends by itself).
SHUTDOWN_TIMEOUT_S = 1.0
#: A host name (letters, digits, dots and hyphens, not starting with a hyphen) or an IPv4 address.
_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")


def port_number(text: str, option: str, given: str | None = None) -> int:
    """``text`` as a port, or UserError naming ``option`` and what was ``given`` (default: ``text``)."""
    if not text.isdigit() or int(text) > 65535:
        raise UserError(f"{option} {text if given is None else given}: expected a port number 0-65535 (0: any free one)")
    return int(text)


def parse_address(text: str, default_port: int, option: str) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST``, ``:PORT`` or ``PORT`` (IPv6 in brackets with a port: ``[::1]:8080``);
    the host defaults to this machine only, the port to ``default_port``."""
    text = text.strip()
    bad_form = UserError(f"{option} {text}: expected HOST:PORT, HOST, :PORT or PORT (IPv6 in brackets: [::1]:8080)")
    if text.isdigit():
        return LOCAL_HOST, port_number(text, option)
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or ":" not in host or (rest and not rest.startswith(":")):
            raise bad_form
        port = rest[1:] if rest else None
    elif text.count(":") > 1:  # a bare IPv6 address: no port
        host, port = text, None
    else:
        host, colon, port = text.partition(":")
        port = port if colon else None
        host = host or LOCAL_HOST
    if not _HOST_NAME.fullmatch(host) and not _is_ip(host):
        raise bad_form
    return host, default_port if port is None else port_number(port, option, text)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_local(host: str) -> bool:
    """Whether a bind to ``host`` keeps a server to this machine (under a name a browser sends as
    its Host, one of :data:`LOCAL_NAMES`)."""
    return url_host(host) in LOCAL_NAMES


def url_host(host: str) -> str:
    """``host`` as a URL writes it (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host else host


def _host_name(header: str) -> str:
    """The Host header without its port: ``127.0.0.1:8765`` → ``127.0.0.1``; ``[::1]:80`` → ``[::1]``."""
    if header.startswith("["):
        return header[: header.find("]") + 1]
    return header.rsplit(":", 1)[0]


@web.middleware
async def local_names_only(request: web.Request, handler):
    """403 to a request whose Host is not a name of this machine: another site that rebinds its
    name to 127.0.0.1 must not read or drive a page served here. For apps bound to this machine."""
    if _host_name((request.host or "").lower()) not in LOCAL_NAMES:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = sockname[1] if sockname else "PORT"
        return web.json_response({"error": f"Host {request.host!r}: open the page at http://{LOCAL_HOST}:{port}/"},
                                 status=403)
    return await handler(request)


class WebServer:
    """``app`` served on ``host:port`` from a thread with its own event loop. ``option`` is the
    command's option for the address (``--http``, ``--port``), for its one-line errors; with
    ``typed_with_host`` the user types it as ``HOST:PORT``, otherwise as a port alone."""

    def __init__(self, app: web.Application, host: str, port: int, *, option: str, typed_with_host: bool = True) -> None:
        self.app, self.host, self.port = app, host, port
        self.option, self.typed_with_host = option, typed_with_host
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}/"

    def typed(self, port: int) -> str:
        """The address as the user types it, with ``port``."""
        return f"{url_host(self.host)}:{port}" if self.typed_with_host else str(port)

    def start(self) -> None:
        """Bind now; a port in use (or any other refusal to listen) is one line, and nothing left running."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"livedroid-web{self.option}", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        except OSError as error:
            self.stop()
            given = f"{self.option} {self.typed(self.port)}"
            if error.errno == errno.EADDRINUSE:
                raise UserError(f"{given}: the port is in use (pick another, or {self.option} {self.typed(0)} "
                                "for any free one)") from None
            raise UserError(f"{given}: cannot listen ({error.strerror or error})") from None

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        """Close the listener and the open requests, then the loop; safe to call twice, or unstarted."""
        loop, thread, runner = self._loop, self._thread, self._runner
        self._loop = self._thread = self._runner = None
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()

