"""The preview window, on a real X server (Xvfb) when one can be started."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import pytest

from tests.conftest import run_cli, skip_unless_ci, write_clip


def has_gui() -> bool:
    info = cv2.getBuildInformation()
    gui = info[info.find("GUI:") :].splitlines()[0]
    return "NONE" not in gui and "NO" != gui.split(":")[-1].strip()


@pytest.fixture
def display():
    if not shutil.which("Xvfb"):
        skip_unless_ci("needs Xvfb (Debian xvfb) for a real window; .ci/run installs it")
    if not has_gui():
        skip_unless_ci("OpenCV was installed without GUI support (opencv-python-headless won over opencv-python)")
    number = 90 + os.getpid() % 100
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "640x480x24"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    yield f":{number}"
    server.terminate()
    server.wait()


def test_window_shows_every_frame_on_a_real_display(tmp_path: Path, default_model: Path, display: str, monkeypatch) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=15)
    monkeypatch.setenv("DISPLAY", display)
    result = run_cli("run", str(clip), "-m", str(default_model), "--show", "--jsonl", "d.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len((tmp_path / "d.jsonl").read_text().splitlines()) == 15


def test_show_without_a_display_is_one_clear_line(tmp_path: Path, default_model: Path, monkeypatch) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=3)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = run_cli("run", str(clip), "-m", str(default_model), "--show", cwd=tmp_path)
    assert result.returncode == 2
    assert "--show needs a display" in result.stderr and "Traceback" not in result.stderr
