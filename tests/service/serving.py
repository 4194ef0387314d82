"""``livedroid serve`` in a subprocess, as a user runs it, with a small HTTP client for its API."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import av

from tests.conftest import REPO, wait_for


class Served:
    """A running ``livedroid serve``: its address, its stderr so far, and GETs with the token."""

    def __init__(self, *args: str, cwd: Path, token: str | None = None, startup_s: float = 90) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
        self.token = token
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "livedroid", "serve", *args, *(["--token", token] if token else [])],
            cwd=cwd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self.wait_for(lambda: self._address(), startup_s, "the 'serving' line")

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def _address(self) -> str | None:
        if self.process.poll() is not None:
            time.sleep(0.2)  # let the reader take the last lines
            raise AssertionError(f"livedroid serve exited {self.process.returncode}:\n{self.stderr}")
        found = re.search(r"serving .* on (http://\S+/)", self.stderr)
        return found.group(1) if found else None

    def get(self, path: str, *, token: str | None | bool = True, timeout: float = 10) -> tuple[int, bytes, str]:
        """(status, body, content type); ``token=True``: the service's token as a Bearer header."""
        request = urllib.request.Request(self.url + path.lstrip("/"))
        bearer = self.token if token is True else token or None
        if bearer:
            request.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers.get("Content-Type", "")

    def json(self, path: str) -> dict:
        status, body, _ = self.get(path)
        assert status == 200, (path, status, body[:200])
        return strict_json(body)

    def stats(self) -> dict:
        return self.json("/api/stats")["cameras"]

    def wait_for(self, check: Callable[[], object], seconds: float, what: str):
        try:
            return wait_for(check, seconds, what, poll=0.25)
        except AssertionError as timeout:
            raise AssertionError(f"{timeout}; stderr:\n{self.stderr}") from None

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            time.sleep(0.2)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def decoded_frames(video: Path) -> int:
    """Every frame of ``video`` decoded with PyAV (raises if it does not play); 0 unless the first
    is a keyframe (a segment must play from its start)."""
    with av.open(str(video)) as container:
        frames = list(container.decode(video=0))
    return len(frames) if frames and frames[0].key_frame else 0


def strict_json(text: str | bytes) -> object:
    """JSON as a browser's ``fetch().json()`` reads it: NaN and Infinity, which Python's own
    encoder writes by default, fail the test, because they fail the page."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the server's JSON: not JSON, the page cannot read it")

    return json.loads(text, parse_constant=refuse)
