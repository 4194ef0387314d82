"""``livedroid serve`` end to end, as typed, in a fresh process: two cameras from the real RTSP
server and a looping file, one of them dropping and coming back; cameras offline at start, failing,
recording, motion-gated, masked; Ctrl-C and SIGTERM; bad input. Its HTTP API answer by answer is
tested in process (test_api.py)."""

from __future__ import annotations

import re
import signal
import socket
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from livedroid import cli
from tests.conftest import RtspServer, free_port, probe, run_cli, write_clip
from tests.service.conftest import PASSWORD
from tests.service.serving import Served


def processed(served: Served) -> dict[str, int]:
    return {name: figures["frames_processed"] for name, figures in served.stats().items()}


def test_three_cameras_one_drops_and_returns(three_cameras) -> None:
    served, north = three_cameras
    served.wait_for(lambda: min(processed(served).values()) >= 5, 90, "frames on all three cameras")

    stats = served.stats()
    assert set(stats) == {"north", "south", "demo"}
    for figures in stats.values():
        assert figures["state"] == "live"
        assert 0 < figures["detect_fps"] <= 5.5 and figures["fps"] > 0
        assert figures["latency_ms"]["p95"] is not None and figures["reconnects"] == 0
    inference = served.json("/api/stats")["inference"]["coco-ssd-mobilenet-v2"]
    assert inference["frames"] >= 15 and inference["most_frames_taken_ahead"] <= 2
    # The API itself (token, page, pictures, metrics, no address in any answer) is tested in
    # process: test_api.py. Here the command as typed, its cameras coming and going.

    # North's server goes away: the others keep running, north is not live.
    north.stop()
    before = processed(served)
    served.wait_for(lambda: served.stats()["north"]["state"] != "live", 30, "north shown as not live")
    served.wait_for(lambda: all(processed(served)[n] >= before[n] + 10 for n in ("south", "demo")), 30,
                    "south and demo still processing")
    # It comes back on the same port: north reconnects and its stats count it.
    north.start()
    served.wait_for(lambda: served.stats()["north"]["reconnects"] >= 1, 60, "north's reconnect in the stats")
    back = processed(served)["north"]
    served.wait_for(lambda: processed(served)["north"] >= back + 5, 30, "north processing again")

    assert served.stop(signal.SIGINT) == 130
    assert "Traceback" not in served.stderr and PASSWORD not in served.stderr
    assert re.search(r"camera north: \d+ frames read, \d+ inferred, \d+ dropped, [1-9]\d* reconnects", served.stderr)


def test_a_camera_offline_at_start_comes_up_later_and_the_others_run(rtsp_server, tmp_path: Path) -> None:
    """``rtsp_server`` only checks that GStreamer is there: this server starts late, on a port chosen first."""
    late = RtspServer()
    late.port = free_port()
    write_clip(tmp_path / "demo.mp4", frames=30, size=(320, 180), fps=15, audio=None)
    served = Served(late.url(), "demo.mp4", "--loop", "--name", "late", "--name", "demo",
                    "--http", "127.0.0.1:0", "--connect-timeout", "1", cwd=tmp_path)
    try:
        served.wait_for(lambda: served.stats()["late"]["state"] == "offline", 30, "late shown offline")
        served.wait_for(lambda: served.stats()["demo"]["frames_processed"] >= 10, 60, "demo processing")
        assert served.stats()["late"]["error"].startswith("cannot connect to camera late")
        assert "camera late: offline (cannot connect to camera late" in served.stderr
        late.start()
        served.wait_for(lambda: served.stats()["late"]["frames_processed"] >= 5, 60, "late processing once up")
        assert served.stats()["late"]["state"] == "live"
        assert served.stop() == 130
    finally:
        served.kill()
        late.stop()


def test_sigterm_stops_a_camera_still_connecting_within_seconds(tmp_path: Path) -> None:
    """Nothing listens on door's port, so its first connect retries for --connect-timeout (45 s):
    the first SIGTERM cuts that short (systemd's stop timeout would otherwise SIGKILL the service)."""
    write_clip(tmp_path / "demo.mp4", frames=30, size=(320, 180), fps=15, audio=None)
    served = Served(f"rtsp://127.0.0.1:{free_port()}/stream", "demo.mp4", "--loop", "--name", "door", "--name", "demo",
                    "--http", "127.0.0.1:0", "--connect-timeout", "45", cwd=tmp_path)
    try:
        served.wait_for(lambda: served.stats()["demo"]["frames_processed"] >= 3, 60, "demo processing")
        assert served.stats()["door"]["state"] == "starting"  # still in its first connect
        began = time.monotonic()
        assert served.stop(signal.SIGTERM, timeout=60) == 130
        took = time.monotonic() - began
    finally:
        served.kill()
    assert took < 5, f"SIGTERM took {took:.1f} s"
    assert "Traceback" not in served.stderr and "camera door: offline" not in served.stderr


def damaged_clip(path: Path) -> Path:
    """An MP4 that opens (its index comes first) but whose pictures were cut off: it plays nothing."""
    whole = write_clip(path.with_name("whole.mp4"), frames=30, audio=None)
    with av.open(str(whole)) as source, av.open(str(path), "w", options={"movflags": "faststart"}) as output:
        stream = output.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.dts is not None:
                packet.stream = stream
                output.mux(packet)
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"mdat") + 4])
    return path


def test_a_camera_that_keeps_failing_restarts_less_and_less_often(tmp_path: Path) -> None:
    """Its source opens and ends at once, every time: the waits between restarts double (1, 2, 4 s …)
    instead of starting again at 1 s because the source had opened."""
    damaged_clip(tmp_path / "broken.mp4")
    served = Served("broken.mp4", "--loop", "--name", "broken", "--http", "127.0.0.1:0", cwd=tmp_path)
    try:
        served.wait_for(lambda: served.stats()["broken"]["state"] == "reconnecting", 60, "the first end of broken")
        time.sleep(10)
        restarts = served.stats()["broken"]["reconnects"]
        assert served.stop() == 130
    finally:
        served.kill()
    assert 2 <= restarts <= 4, f"{restarts} restarts in 10 s (1, 2, 4 s apart: 3)"


def test_recording_a_camera_leaves_a_playable_video(tmp_path: Path) -> None:
    write_clip(tmp_path / "demo.mp4", frames=45, size=(320, 180), fps=15, audio=None)
    (tmp_path / "cameras.yaml").write_text(
        "recordings: recorded\ncameras:\n  - {name: demo, source: demo.mp4, loop: true, record: true, detect_fps: 10}\n")
    served = Served("--config", "cameras.yaml", "--http", "127.0.0.1:0", cwd=tmp_path)
    try:
        served.wait_for(lambda: served.stats()["demo"]["frames_processed"] >= 20, 60, "20 processed frames")
        assert served.stop(signal.SIGTERM) == 130
    finally:
        served.kill()
    (video,) = (tmp_path / "recorded").rglob("demo-*.mp4")
    info = probe(video)
    assert info["frames"] >= 20 and (info["width"], info["height"]) == (320, 180)
    assert info["pts"] == sorted(info["pts"])  # wall-clock stamps: monotonic across the clip's loops
    assert info["pts"][-1] >= 1.5


def test_a_motion_gated_camera_skips_still_frames(tmp_path: Path) -> None:
    """Two cameras on the same still picture: the gated one runs the model only for its first frame
    and the full passes (every 20 inferred frames); the other once a frame."""
    still = np.full((180, 320, 3), 90, np.uint8)
    write_clip(tmp_path / "still.mp4", frames=30, size=(320, 180), fps=15, audio=None, draw=lambda _: still)
    (tmp_path / "cameras.yaml").write_text(
        "defaults: {loop: true, detect_fps: 15}\n"
        "cameras:\n  - {name: gated, source: still.mp4, motion: true}\n  - {name: plain, source: still.mp4}\n")
    served = Served("--config", "cameras.yaml", "--http", "127.0.0.1:0", cwd=tmp_path)
    try:
        served.wait_for(lambda: min(processed(served).values()) >= 40, 90, "40 processed frames on each camera")
        stats = served.stats()
        _, metrics, _ = served.get("/metrics")
        assert served.stop() == 130
    finally:
        served.kill()
    assert (stats["gated"]["motion"], stats["plain"]["motion"]) == (True, False)
    assert stats["gated"]["model_runs_per_frame"] <= 0.15 and stats["plain"]["model_runs_per_frame"] >= 0.95
    assert re.search(rb'livedroid_camera_model_runs_per_frame\{camera="gated"\} 0\.[01]', metrics)


def _busy_port() -> socket.socket:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder


@pytest.mark.parametrize(
    "args, config, message",
    [
        (["a.mp4", "b.mp4", "--name", "x", "--name", "x", "--loop"], None, "camera name 'x' is used twice"),
        (["a.mp4", "b.mp4", "--name", "x"], None, "1 --name for 2 sources"),
        (["missing.mp4", "--loop"], None, "camera camera1: source not found: missing.mp4"),
        (["a.mp4"], None, "a.mp4 is a file: add --loop"),
        (["a.mp4", "--loop", "--http", "0.0.0.0:0"], None, "serves beyond this machine: give --token"),
        (["a.mp4", "--loop", "--http", "127.0.0.1:{busy}"], None, "the port is in use"),
        (["a.mp4", "--loop", "--classes", "droid"], None, "classes droid not in the model's labels"),
        ([], "cameras:\n  - {name: a, source: a.mp4, loop: true, detect-fps: 3}\n", "unknown key 'detect-fps' (did you mean 'detect_fps'?)"),
        ([], None, "no cameras"),
        (["--detect-fps", "2"], "cameras: [{name: a, source: a.mp4, loop: true}]\n", "--detect-fps: with --config FILE, per-camera settings go in the file"),
        (["--motion"], "cameras: [{name: a, source: a.mp4, loop: true}]\n", "--motion: with --config FILE, per-camera settings go in the file"),
        (["a.mp4", "--loop", "--detect-fps", "nan"], None, "argument --detect-fps: expected frames a second above 0, got nan"),
        (["a.mp4", "--loop", "--threshold", "inf"], None, "argument -t/--threshold: expected a score above 0 and below 1, got inf"),
        ([], "cameras: [{name: a, source: a.mp4, loop: true, detect_fps: .nan}]\n", "camera 1 (a): detect_fps: expected frames a second above 0, got nan"),
        (["a.mp4", "--loop", "--mqtt-queue", "0"], None, "argument --mqtt-queue: expected a whole number of at least 1, got 0"),
        (["a.mp4", "--loop", "--mqtt-queue", "-1"], None, "argument --mqtt-queue: expected a whole number of at least 1, got -1"),
    ],
)
@pytest.mark.timeout(120)  # should a check go, the service would start and serve on: fail instead
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], config: str | None, message: str, monkeypatch, capsys) -> None:
    """Through the command line's own entry, in process (the command in a fresh process, as typed:
    the test below)."""
    write_clip(tmp_path / "a.mp4", frames=5, audio=None)
    write_clip(tmp_path / "b.mp4", frames=5, audio=None)
    holder = _busy_port()
    args = [a.replace("{busy}", str(holder.getsockname()[1])) for a in args]
    if config:
        (tmp_path / "cameras.yaml").write_text(config)
        args += ["--config", "cameras.yaml"]
    monkeypatch.chdir(tmp_path)
    try:
        code = cli.main(["serve", *args] if "--http" in args else ["serve", *args, "--http", "127.0.0.1:0"])
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    finally:
        holder.close()
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("livedroid: error:")]
    assert len(lines) == 1 and message in lines[0], stderr
    assert "Traceback" not in stderr


def test_bad_input_as_typed_is_one_line_in_a_fresh_process(tmp_path: Path) -> None:
    write_clip(tmp_path / "a.mp4", frames=5, audio=None)
    result = run_cli("serve", "a.mp4", "--http", "127.0.0.1:0", cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("livedroid: error:") and "a.mp4 is a file: add --loop" in line


def test_a_cameras_privacy_mask_is_burned_into_its_live_view_and_recording(tmp_path: Path) -> None:
    write_clip(tmp_path / "demo.mp4", frames=45, size=(320, 180), fps=15, audio=None,
               draw=lambda index: np.full((180, 320, 3), 200, np.uint8))
    (tmp_path / "cameras.yaml").write_text(
        "recordings: recorded\ncameras:\n  - name: demo\n    source: demo.mp4\n    loop: true\n    record: true\n"
        "    detect_fps: 10\n    privacy: {masks: {corner: [[0, 0], [0.5, 0], [0.5, 0.5], [0, 0.5]]}, style: fill}\n")
    served = Served("--config", "cameras.yaml", "--http", "127.0.0.1:0", cwd=tmp_path)
    try:
        served.wait_for(lambda: served.stats()["demo"]["frames_processed"] >= 20, 60, "20 processed frames")
        status, jpeg, _ = served.get("/api/cameras/demo/latest.jpg")
        assert status == 200
        view = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert view[5:85, 5:155].mean() < 15 and view[100:175, 170:315].mean() > 185
        assert served.stop(signal.SIGTERM) == 130
    finally:
        served.kill()
    (video,) = (tmp_path / "recorded").rglob("demo-*.mp4")
    with av.open(str(video)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) >= 20
    assert all(f[5:85, 5:155].mean() < 15 and f[100:175, 170:315].mean() > 185 for f in frames)
