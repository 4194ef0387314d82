"""The three cameras of the serve tests: two real RTSP streams (one with credentials) and a
looping file, in one ``livedroid serve`` with a token."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_clip
from tests.service.serving import Served

PASSWORD = "s3cr3t-pw"
TOKEN = "t0ken-for-tests"


@pytest.fixture
def three_cameras(rtsp_server, tmp_path: Path):
    """North (with credentials) and south from real RTSP servers, demo a looping clip; yields
    (Served, north's server)."""
    north = rtsp_server("--user", "droid", "--password", PASSWORD)
    south = rtsp_server()
    clip = write_clip(tmp_path / "demo.mp4", frames=60, size=(320, 180), fps=15, audio=None)
    served = Served(north.url(f"droid:{PASSWORD}"), south.url(), str(clip), "--loop",
                    "--name", "north", "--name", "south", "--name", "demo",
                    "--http", "127.0.0.1:0", "--reconnect-timeout", "60", "--detect-fps", "5",
                    cwd=tmp_path, token=TOKEN)
    try:
        yield served, north
    finally:
        served.kill()
