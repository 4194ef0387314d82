"""What the batch tests check of an output folder, as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import probe, read_jsonl


def manifest(out: Path) -> dict[str, dict]:
    """The last record of each file."""
    records = read_jsonl(out / "manifest.jsonl")
    return {record["name"]: record for record in records}


def assert_complete(out: Path, name: str, source: Path, *, video: bool = True) -> None:
    """Both outputs exist under their real names with a record and a picture per input frame."""
    expected = probe(source)["frames"]
    records = (out / f"{name}.jsonl").read_text().splitlines()
    assert len(records) == expected
    assert [json.loads(r)["frame"] for r in records] == list(range(expected))
    if video:
        written = probe(out / f"{name}-detections.mp4")
        assert written["frames"] == expected and written["codec"] == "h264"
        assert bool(written["audio"]) == bool(probe(source)["audio"])  # audio kept (copied or AAC)
    assert not list(out.glob(f"{name}*.partial"))


def start_batch(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "livedroid", "batch", *args, "--no-progress"],
        cwd=cwd, env=env or dict(os.environ, PYTHONUNBUFFERED="1"), stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its worker processes are ended with it, whatever the test does
    )


def end(process: subprocess.Popen) -> None:
    """Kill what a failed test left running (the batch's own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
