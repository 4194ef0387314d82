"""Live RTSP against a real server (GStreamer's gst-rtsp-server on 127.0.0.1)."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, probe, read_jsonl, run_cli, wait_for, write_clip

pytestmark = pytest.mark.rtsp


def records(path: Path) -> list[dict]:
    """The complete records so far of a JSON Lines file being written (none before it exists)."""
    return read_jsonl(path, complete_only=True) if path.exists() else []


def start_livedroid(url: str, model: Path, cwd: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "livedroid", "run", url, "-m", str(model), "-o", "live.mp4",
         "--jsonl", "live.jsonl", "--no-progress", *extra],
        cwd=cwd, stderr=subprocess.PIPE, text=True,
    )


def summary_counts(stderr: str) -> tuple[int, int, float]:
    """(processed, dropped, p95 latency in ms) from run's summary line."""
    summary = next(line for line in stderr.splitlines() if "frames read" in line)
    processed = int(summary.split(" processed")[0].rsplit(" ", 1)[-1])
    dropped = int(summary.split(" dropped")[0].rsplit(" ", 1)[-1]) if " dropped" in summary else 0
    p95 = float(summary.split("p95 ")[1].split(" ms")[0]) if "p95 " in summary else float("nan")
    return processed, dropped, p95


def test_a_live_stream_drops_frames_to_keep_latency_bounded_a_file_drops_none(rtsp_server, tmp_path: Path) -> None:
    # A detector that keeps up with a third of the stream's 30 fps: live, the newest frame is always
    # taken, so most frames are dropped and latency stays near one detection; were frames queued as
    # a file's are, the 60th would wait 60 x (0.1 - 1/30) s = 4 s.
    slow = ("--backend", "slow", "--workers", "1", "--jsonl", "live.jsonl", "-o", "live.mp4", "--no-progress")
    live = run_cli("run", rtsp_server().url(), "--max-frames", "60", *slow, cwd=tmp_path, timeout=120, module="tests.extra_backends")
    assert live.returncode == 0, live.stderr
    assert "60 frames read" in live.stderr, live.stderr
    processed, dropped, p95 = summary_counts(live.stderr)
    assert processed + dropped == 60 and dropped >= 25, live.stderr
    assert p95 < 1000, live.stderr
    assert len(records(tmp_path / "live.jsonl")) == processed == probe(tmp_path / "live.mp4")["frames"]

    clip = write_clip(tmp_path / "clip.mp4", frames=20)
    played = run_cli("run", str(clip), *slow, "--overwrite", cwd=tmp_path, timeout=120, module="tests.extra_backends")
    assert played.returncode == 0, played.stderr
    assert summary_counts(played.stderr)[:2] == (20, 0), played.stderr  # a file's every frame, none dropped


def test_server_drop_and_return_reconnects_into_the_same_output(rtsp_server, default_model: Path, tmp_path: Path) -> None:
    server = rtsp_server()
    run = start_livedroid(server.url(), default_model, tmp_path, "--reconnect-timeout", "30")
    try:
        jsonl = tmp_path / "live.jsonl.partial"
        wait_for(lambda: len(records(jsonl)) >= 20, 30, "frames before the drop")
        server.stop()
        time.sleep(2)
        before = len(records(jsonl))
        server.start()  # same port
        wait_for(lambda: len(records(jsonl)) >= before + 20, 40, "frames after the reconnect")
    finally:
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert "connection lost" in stderr and "reconnected after" in stderr
    lines = records(tmp_path / "live.jsonl")
    assert probe(tmp_path / "live.mp4")["frames"] == len(lines)
    stamps = [r["timestamp"] for r in lines]
    assert max(b - a for a, b in zip(stamps, stamps[1:])) > 1.5  # the gap is kept in the timeline


def test_server_down_at_start_retries_then_one_clear_error(rtsp_server, default_model: Path, tmp_path: Path) -> None:
    # "401"/"404" in the URL itself must not pass for the server's refusal (a random port once did)
    url = f"rtsp://127.0.0.1:{free_port()}/cam401-404"
    started = time.monotonic()
    result = run_cli("run", url, "-m", str(default_model), "--connect-timeout", "2", "--jsonl", "x.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    assert time.monotonic() - started >= 2  # it kept trying
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"cannot connect to {url}" in errors[0] and "tried for 2 s" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_credentials_never_appear_in_logs_or_outputs(rtsp_server, default_model: Path, tmp_path: Path) -> None:
    server = rtsp_server("--user", "droid", "--password", "s3cr3t-pw")
    result = run_cli("run", server.url("droid:s3cr3t-pw"), "-m", str(default_model), "--max-frames", "10",
                     "-o", "live.mp4", "--jsonl", "live.jsonl", "-v", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "s3cr3t-pw" not in result.stderr + result.stdout
    assert "rtsp://***@127.0.0.1" in result.stderr
    for output in ("live.mp4", "live.jsonl"):
        assert b"s3cr3t-pw" not in (tmp_path / output).read_bytes()

    wrong = run_cli("run", server.url("droid:wrong-pw"), "-m", str(default_model), "--jsonl", "bad.jsonl",
                    "--connect-timeout", "2", cwd=tmp_path)
    assert wrong.returncode == 2 and "401" in wrong.stderr and "wrong-pw" not in wrong.stderr
