"""``livedroid batch`` on this machine's worker processes, run as a user runs it."""

import os
import signal
from pathlib import Path

import pytest

from livedroid.wording import plural
from tests.batch.helpers import assert_complete, end, manifest, start_batch
from tests.conftest import read_jsonl, run_cli, shared_path, tmpfs, wait_for, write_clip


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """Three real clips: H.264 with AAC audio, one without audio, one in Matroska."""
    folder = tmp_path / "clips"
    folder.mkdir()
    write_clip(folder / "a.mp4", frames=24)
    write_clip(folder / "b.mp4", frames=31, audio=None)
    write_clip(folder / "c.mkv", frames=17)
    return folder


def sources(clips: Path) -> dict[str, Path]:
    return {path.stem: path for path in clips.iterdir()}


@pytest.mark.parametrize("extra, video", [([], True), (["--no-video"], False)])
def test_each_file_annotated_then_a_rerun_skips_them(tmp_path: Path, clips: Path, extra: list[str], video: bool) -> None:
    result = run_cli("batch", str(clips), "--out", "out", "--no-progress", *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 files: 3 done, 0 skipped (already complete), 0 failed | 72 frames" in result.stderr
    out = tmp_path / "out"
    for name, source in sources(clips).items():
        assert_complete(out, name, source, video=video)
        assert manifest(out)[name]["status"] == "done"
    assert bool(list(out.glob("*-detections.mp4"))) == video
    stamps = {path: path.stat().st_mtime_ns for path in out.iterdir() if path.name != "manifest.jsonl"}

    again = run_cli("batch", str(clips), "--out", "out", "--no-progress", *extra, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "3 of 3 files already complete, skipped" in again.stderr
    assert "3 files: 0 done, 3 skipped" in again.stderr
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps
    assert {record["status"] for record in manifest(out).values()} == {"skipped"}


def _cut_jsonl(out: Path, clips: Path) -> None:
    lines = (out / "b.jsonl").read_text().splitlines(keepends=True)
    (out / "b.jsonl").write_text("".join(lines[:-1]))


def _crashed_mid_file(out: Path, clips: Path) -> None:
    (out / "b-detections.mp4").rename(out / "b-detections.mp4.partial")
    (out / "b.jsonl").rename(out / "b.jsonl.partial")


def _video_cut(out: Path, clips: Path) -> None:
    video = out / "b-detections.mp4"
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])


def _input_replaced(out: Path, clips: Path) -> None:
    write_clip(clips / "b.mp4", frames=12, audio=None)


@pytest.mark.parametrize(
    "tamper, extra, skipped",
    [
        (_cut_jsonl, [], 2),
        (_crashed_mid_file, [], 2),
        (_video_cut, [], 2),
        (_input_replaced, [], 2),
        (None, ["-t", "0.3"], 0),  # other settings: other outputs
        (None, ["--overwrite"], 0),
    ],
)
def test_a_rerun_redoes_what_is_not_complete(tmp_path: Path, clips: Path, tamper, extra: list[str], skipped: int) -> None:
    assert run_cli("batch", str(clips), "--out", "out", "--no-progress", cwd=tmp_path).returncode == 0
    out = tmp_path / "out"
    if tamper:
        tamper(out, clips)
    result = run_cli("batch", str(clips), "--out", "out", "--no-progress", *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{3 - skipped} done, {skipped} skipped" in result.stderr
    for name, source in sources(clips).items():
        assert_complete(out, name, source)


def test_a_corrupt_file_among_good_ones_is_recorded_and_the_others_go_on(tmp_path: Path, clips: Path) -> None:
    good = (clips / "a.mp4").read_bytes()
    (clips / "cut.mp4").write_bytes(good[: len(good) // 3])  # a real clip cut short: no index
    (clips / "text.avi").write_text("not a video\n" * 100)
    result = run_cli("batch", str(clips), "--out", "out", "--no-progress", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "5 files: 3 done, 0 skipped (already complete), 2 failed" in result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("livedroid: failed:")]
    assert len(failed) == 2 and all("not a readable video" in line for line in failed), result.stderr
    out = tmp_path / "out"
    records = manifest(out)
    for name in ("a", "b", "c"):
        assert_complete(out, name, clips / f"{name}.{'mkv' if name == 'c' else 'mp4'}")
        assert records[name]["status"] == "done"
    for name in ("cut", "text"):
        assert records[name]["status"] == "failed" and name in records[name]["error"]
        assert not list(out.glob(f"{name}*"))

    again = run_cli("batch", str(clips), "--out", "out", "--no-progress", cwd=tmp_path)
    assert again.returncode == 1
    assert "5 files: 0 done, 3 skipped (already complete), 2 failed" in again.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_leaves_finished_files_complete_and_a_rerun_finishes(tmp_path: Path, signum) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("a", "b", "c"):
        write_clip(clips / f"{name}.mp4", frames=300, size=(320, 192))
    out = tmp_path / "out"
    process = start_batch(str(clips), "--out", "out", "--workers", "1", cwd=tmp_path)
    try:
        wait_for(lambda: (out / "manifest.jsonl").exists() and list(out.glob("*.jsonl.partial")))
        process.send_signal(signum)  # to the driver alone: it tells its workers
        _, stderr = process.communicate(timeout=120)
    finally:
        end(process)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    records = manifest(out)
    done = [name for name, record in records.items() if record["status"] == "done"]
    interrupted = [name for name, record in records.items() if record["status"] == "interrupted"]
    assert len(done) >= 1 and len(interrupted) == 1, records
    for name in done:
        assert_complete(out, name, clips / f"{name}.mp4")
    for name in interrupted:  # stopped part-way: never under the finished names
        assert not (out / f"{name}.jsonl").exists() and not (out / f"{name}-detections.mp4").exists()
        assert (out / f"{name}.jsonl.partial").exists()
    assert f"{len(done)} done" in stderr and "1 interrupted" in stderr

    again = run_cli("batch", str(clips), "--out", "out", "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"{len(done)} of 3 files already complete, skipped" in again.stderr
    for name in ("a", "b", "c"):
        assert_complete(out, name, clips / f"{name}.mp4")


def test_help_teaches() -> None:
    result = run_cli("batch", "--help")
    assert result.returncode == 0
    for words in ("--out", "--no-video", "--ray", "manifest.jsonl", "Ctrl-C", "--workers", "shares"):
        assert words in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.mp4", "--out", "o"], "input not found: missing.mp4"),
        (["clips", "--out", "o", "-m", "nope.tflite"], "model not found"),
        (["clips", "--out", "o", "--classes", "wookiee"], "wookiee not in the model's labels"),
    ],
)
def test_usage_errors_are_one_clear_line(tmp_path: Path, clips: Path, args: list[str], message: str, livedroid_main) -> None:
    result = livedroid_main("batch", *args, cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("livedroid: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_damaged_file_is_incomplete_counted_and_retried(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    write_clip(clips / "whole.mp4", frames=12, audio=None)
    whole = shared_path("videos/intel_one-by-one-person-detection.mp4").read_bytes()
    (clips / "cut.mp4").write_bytes(whole[:1_500_000])  # head -c 1500000: 629 of 1394 frames
    for attempt in range(2):
        result = run_cli("batch", str(clips), "--out", "out", "--no-progress", cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        done = "1 done, 0 skipped" if attempt == 0 else "0 done, 1 skipped"
        assert f"2 files: {done} (already complete), 0 failed, 1 incomplete" in result.stderr, result.stderr
        assert "livedroid: incomplete: " in result.stderr and "read 629 of 1394 frames" in result.stderr
        record = manifest(tmp_path / "out")["cut"]
        assert (record["status"], record["frames"]) == ("incomplete", 629)
        assert len(read_jsonl(tmp_path / "out" / "cut.jsonl")) == 629


def test_an_input_named_manifest_never_overwrites_the_manifest(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    write_clip(clips / "manifest.mp4", frames=40, audio=None)
    write_clip(clips / "b.mp4", frames=10, audio=None)
    first = run_cli("batch", str(clips), "--out", "out", "--no-progress", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    records = manifest(tmp_path / "out")
    assert sorted(records) == ["b", "manifest-video"] and len(read_jsonl(tmp_path / "out" / "manifest-video.jsonl")) == 40
    again = run_cli("batch", str(clips), "--out", "out", "--no-progress", cwd=tmp_path)
    assert "2 files: 0 done, 2 skipped" in again.stderr, again.stderr


def test_a_torn_last_line_loses_no_record_and_is_warned_about(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    write_clip(clips / "a.mp4", frames=8, audio=None)
    write_clip(clips / "b.mp4", frames=8, audio=None)
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.jsonl").write_text('{"name": "a", "status": "do')  # a crash mid-line
    result = run_cli("batch", str(clips), "--out", "out", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "livedroid: out/manifest.jsonl: skipped 1 unreadable line(s)" in result.stderr
    again = run_cli("batch", str(clips), "--out", "out", "--no-progress", cwd=tmp_path)
    assert "2 files: 0 done, 2 skipped" in again.stderr, again.stderr  # both records read back


def test_a_second_batch_on_the_same_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    write_clip(clips / "long.mp4", frames=600, size=(320, 192), audio=None)
    out = tmp_path / "out"
    first = start_batch(str(clips), "--out", "out", "--workers", "1", cwd=tmp_path)
    try:
        wait_for(lambda: list(out.glob("*.jsonl.partial")))
        second = run_cli("batch", str(clips), "--out", "out", "--no-progress", cwd=tmp_path)
        assert second.returncode == 2
        assert second.stderr.strip().splitlines()[-1] == (
            f"livedroid: error: out is in use by livedroid batch (process {first.pid}): one command writes a folder at a "
            "time; wait for it, or give another --out")
        os.killpg(first.pid, signal.SIGKILL)  # a crashed driver (its workers with it) ...
        first.wait(timeout=30)
    finally:
        end(first)
    third = run_cli("batch", str(clips), "--out", "out", "--no-progress", cwd=tmp_path)  # ... leaves no stale lock
    assert third.returncode == 0, third.stderr
    assert manifest(out)["long"]["status"] == "done"


def test_the_largest_files_start_first(tmp_path: Path) -> None:
    """README: no worker idles at the end on a long file. One worker: the manifest's order is the start order."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for name, frames in (("short", 6), ("long", 40), ("middle", 18)):
        write_clip(folder / f"{name}.mp4", frames=frames, audio=None)
    result = run_cli("batch", str(folder), "--out", "out", "--no-video", "--workers", "1", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [record["name"] for record in read_jsonl(tmp_path / "out" / "manifest.jsonl")] == ["long", "middle", "short"]


def test_a_bug_fails_its_file_with_the_traceback_in_the_manifest(tmp_path: Path) -> None:
    """An internal error is not the file's fault: one line says so, and its record holds where it was raised."""
    folder = tmp_path / "clips"
    folder.mkdir()
    write_clip(folder / "a.mp4", frames=12, audio=None)
    result = run_cli("batch", str(folder), "--out", "out", "--no-video", "--backend", "failing", "--workers", "1",
                     "--no-progress", cwd=tmp_path, module="tests.extra_backends")
    assert result.returncode == 1, result.stderr
    assert "livedroid: failed: " in result.stderr and "internal error: RuntimeError: injected failure after 5 frames" in result.stderr
    assert "its traceback is in the manifest (a bug: please report it)" in result.stderr
    (record,) = read_jsonl(tmp_path / "out" / "manifest.jsonl")
    assert record["status"] == "failed" and record["traceback"].startswith("Traceback (most recent call last):")
    assert "extra_backends.py" in record["traceback"] and "RuntimeError: injected failure" in record["traceback"]


def fill(folder: Path) -> Path:
    """A file taking every free block of ``folder``'s file system."""
    with open(folder / "fill", "wb", buffering=0) as filler:
        try:
            while filler.write(b"\0" * 4096):
                pass
        except OSError:  # the disk is full
            pass
    return folder / "fill"


def test_a_full_disk_under_the_manifest_is_one_line_and_keeps_its_records(tmp_path: Path) -> None:
    """A rerun appends a 'skipped' record per file: on a full disk the manifest cannot grow (was:
    an internal error, a traceback and a torn last record, exit 1)."""
    clips = tmp_path / "clips"
    clips.mkdir()
    for letter in "abcde":  # long names: the records appended outgrow the last block's slack
        write_clip(clips / f"{letter * 200}.mp4", frames=3, audio=None)
    with tmpfs(tmp_path / "tiny", "size=1m") as out:
        first = run_cli("batch", str(clips), "--out", str(out), "--no-video", "--no-progress", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        before = (out / "manifest.jsonl").read_text()
        assert len(before) > 4096, "the rerun's records must need a new block"
        filler = fill(out)
        full = run_cli("batch", str(clips), "--out", str(out), "--no-video", "--no-progress", cwd=tmp_path)
        assert full.returncode == 2, full.stderr
        assert full.stderr.strip().splitlines()[-1:] == [
            f"livedroid: error: cannot write {out / 'manifest.jsonl'}: No space left on device"], full.stderr
        assert "Traceback" not in full.stderr and "Exception ignored" not in full.stderr
        after = (out / "manifest.jsonl").read_text()
        assert after.startswith(before) and after.endswith("\n"), "the records before are intact, none torn"
        assert [record["status"] for record in read_jsonl(out / "manifest.jsonl")][5:] == ["skipped"] * (
            after.count("\n") - 5)
        filler.unlink()
        again = run_cli("batch", str(clips), "--out", str(out), "--no-video", "--no-progress", cwd=tmp_path)
        assert again.returncode == 0 and "5 files: 0 done, 5 skipped" in again.stderr, again.stderr


@pytest.mark.parametrize("backend, workers, threads, files, cores, planned", [
    ("tflite", None, None, 10, 4, (4, 1)),  # README: one process per core, a one-thread interpreter each
    ("tflite", None, None, 2, 4, (2, 2)),  # fewer files than cores: the spare cores go to threads
    ("tflite", 3, None, 10, 4, (3, 1)),
    ("tflite", None, 2, 10, 4, (4, 2)),  # what the user sets stays
    ("tflite", 8, None, 3, 4, (3, 1)),  # never more workers than files
    ("savedmodel", None, None, 10, 4, (1, None)),  # TensorFlow spreads one model over the cores itself
])
def test_the_default_workers_and_threads(monkeypatch, backend, workers, threads, files, cores, planned) -> None:
    from livedroid.batch.local import plan_workers

    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert plan_workers(backend, workers, threads, files) == planned


def test_batch_says_how_it_spreads_the_files_over_the_cores(tmp_path: Path, clips: Path) -> None:
    result = run_cli("batch", str(clips), "--out", "out", "--no-video", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    cores = os.cpu_count() or 1
    workers = min(cores, 3)
    assert ("3 files, model " in result.stderr
            and f"{plural(workers, 'local worker process', 'local worker processes')}, {plural(max(1, cores // workers), 'interpreter thread')} each"
            in result.stderr), result.stderr
