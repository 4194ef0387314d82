"""``livedroid serve``'s recordings under faults: a read-only folder, a disk that fills up, a
kill -9. Real file systems (tmpfs mounted by the test), a real process, every segment decoded."""

from __future__ import annotations

import re
import shutil
import signal
import time
from datetime import datetime
from pathlib import Path

import av
import numpy as np
import pytest

from livedroid.service.recording_index import RecordingIndex, Segment
from tests.conftest import tmpfs, write_clip
from tests.service.serving import Served, decoded_frames


def noise_clip(path: Path) -> Path:
    """Pictures of noise: they compress badly, so a recording fills a small disk in seconds."""
    rng = np.random.default_rng(7)
    return write_clip(path, frames=30, size=(320, 240), fps=15, audio=None,
                      draw=lambda _: rng.integers(0, 256, (240, 320, 3), np.uint8))


def serve_config(folder: Path, cameras: str, top: str = "") -> Served:
    (folder / "cameras.yaml").write_text(f"{top}defaults: {{loop: true, record: true, detect_fps: 5}}\ncameras:\n{cameras}")
    return Served("--config", "cameras.yaml", "--http", "127.0.0.1:0", cwd=folder)


def closed_segments(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.mp4"))


def indexed_and_playing(folder: Path, camera: str) -> list[Segment]:
    """The camera's index rows, checked against the folder: a row for every segment on disk and a
    segment for every row, each of which plays from a keyframe."""
    rows = RecordingIndex(folder).find(camera)
    on_disk = closed_segments(folder)
    assert sorted(str(folder / row.path) for row in rows) == [str(path) for path in on_disk]
    assert all(decoded_frames(path) >= 1 for path in on_disk)
    return rows


def test_a_read_only_recordings_folder_turns_recording_off_and_the_camera_goes_on(tmp_path: Path) -> None:
    write_clip(tmp_path / "demo.mp4", frames=30, size=(320, 180), fps=15, audio=None)
    with tmpfs(tmp_path / "ro", "ro,size=1m"):
        served = serve_config(tmp_path, "  - {name: demo, source: demo.mp4}\n", top="recordings: ro/rec\n")
        try:
            served.wait_for(lambda: served.stats()["demo"]["frames_processed"] >= 25, 60, "25 processed frames")
            stats = served.stats()["demo"]
            status, _, kind = served.get("/api/cameras/demo/latest.jpg")
            _, metrics, _ = served.get("/metrics")
            assert served.stop(signal.SIGTERM) == 130
        finally:
            served.kill()
    assert (stats["state"], stats["reconnects"], stats["recording"]) == ("live", 0, "recording_error")
    assert stats["recording_error"] == "cannot create folder ro/rec (Read-only file system)"
    assert stats["recording_failures"] >= 1
    assert (status, kind) == (200, "image/jpeg")
    assert b'livedroid_camera_recording{camera="demo"} 0.0' in metrics
    assert b'livedroid_camera_recording_failures_total{camera="demo"}' in metrics
    assert served.stderr.count("camera demo: recording off (cannot create folder ro/rec (Read-only file system))") == 1, served.stderr
    assert "failed" not in served.stderr and "Traceback" not in served.stderr


def test_a_full_disk_costs_a_segment_not_the_recording_and_never_the_other_camera(tmp_path: Path) -> None:
    """Two cameras record noise, one onto a 2 MB file system: its oldest segments go to keep room
    for the next ones. Then another program takes all the space left, so that a new segment cannot
    even write its header: that camera's recording turns off with one line, makes room by deleting
    its oldest segments and records again at the retry. The process stays up, the other camera
    records on, and every closed segment of both plays."""
    noise_clip(tmp_path / "noise.mp4")
    with tmpfs(tmp_path / "tiny", "size=2m") as tiny:
        served = serve_config(tmp_path, "  - {name: cramped, source: noise.mp4, recordings: tiny/rec, segment_seconds: 1}\n"
                                        "  - {name: roomy, source: noise.mp4, recordings: roomy, segment_seconds: 1}\n")
        try:
            served.wait_for(lambda: served.stats()["cramped"]["deletions"]["free_space"] >= 2, 60,
                            "cramped's oldest segments to go for room on the small disk")
            assert served.stats()["cramped"]["recording"] == "recording"
            with open(tiny / "filler", "wb", buffering=0) as filler:  # what space is left, another program takes
                try:
                    while filler.write(b"\0" * 65536):
                        pass
                except OSError:
                    pass
            failures, roomy = served.stats()["cramped"]["recording_failures"], served.stats()["roomy"]["segments_recorded"]
            served.wait_for(lambda: served.stats()["cramped"]["recording_failures"] > failures, 30,
                            "a failure on the disk with no space at all")
            served.wait_for(lambda: served.stats()["cramped"]["recording"] == "recording", 60, "cramped recording again")
            recorded = served.stats()["cramped"]["segments_recorded"]
            served.wait_for(lambda: served.stats()["cramped"]["segments_recorded"] >= recorded + 2, 30, "cramped's next segments")
            served.wait_for(lambda: served.stats()["roomy"]["segments_recorded"] >= roomy + 3, 30, "roomy recording on")
            assert served.process.poll() is None
            stats = served.stats()
            assert served.stop(signal.SIGTERM) == 130
        finally:
            served.kill()
        cramped = indexed_and_playing(tiny / "rec", "cramped")  # the index and the folder agree, every segment plays
        assert cramped and (tiny / "filler").exists()  # never a file outside livedroid's index
        roomy_segments = indexed_and_playing(tmp_path / "roomy", "roomy")
    assert stats["cramped"]["state"] == "live" and stats["roomy"]["recording_failures"] == 0
    assert stats["roomy"]["recording"] == "recording" and stats["roomy"]["deletions"]["free_space"] == 0
    assert len(roomy_segments) >= 4
    assert served.stderr.count("camera cramped: recording off (No space left on device)") == 1, served.stderr
    assert "camera cramped: recording again" in served.stderr
    assert "MB free on its disk: deleted the" in served.stderr
    assert "cannot make room" not in served.stderr  # the index, on the same full disk, made room too
    assert "Traceback" not in served.stderr and "camera roomy: recording off" not in served.stderr


def test_kill_9_leaves_every_closed_segment_playable_and_indexed(tmp_path: Path) -> None:
    write_clip(tmp_path / "door.mp4", frames=45, size=(320, 180), fps=15, audio=None)
    served = serve_config(tmp_path, "  - {name: door, source: door.mp4, segment_seconds: 1}\n")
    try:
        served.wait_for(lambda: served.stats()["door"]["segments_recorded"] >= 3, 60, "three closed segments")
        time.sleep(0.5)  # a segment in flight
        served.process.kill()
        served.process.wait()
    finally:
        served.kill()
    segments = closed_segments(tmp_path / "recordings")
    assert len(segments) >= 3 and all(decoded_frames(segment) >= 1 for segment in segments)
    assert len(list((tmp_path / "recordings").rglob("*.partial"))) <= 1
    rows = RecordingIndex(tmp_path / "recordings").find("door")
    names = [Path(row.path).name for row in rows]
    # Every row is a closed segment; every closed segment has its row (the newest may have been
    # renamed a moment before the kill, before its row was written).
    assert set(names) <= {segment.name for segment in segments}
    assert {segment.name for segment in segments[:-1]} <= set(names)
    assert all(row.end > row.start and row.bytes == (tmp_path / "recordings" / row.path).stat().st_size for row in rows)


@pytest.mark.parametrize("cap, says", [
    ("recordings_max_gb: 0.0015", "holds over 0.0015 GB"),
    # on a 5 MB disk, 30 % is 1.5 MB; with both caps the smaller wins
    ("recordings_max_share: 0.3, recordings_max_gb: 100", r"holds over 30% of its disk \(0\.00[0-9]+ GB\)"),
], ids=["in GB", "as a share of the disk"])
def test_a_size_cap_deletes_the_oldest_segments_and_says_which(tmp_path: Path, cap: str, says: str) -> None:
    """Noise at about 0.4 MB a segment under a 1.5 MB cap: the oldest closed segments go (their
    rows first, then their files), the rest stay within the cap, every one left plays."""
    noise_clip(tmp_path / "noise.mp4")
    with tmpfs(tmp_path / "recordings", "size=5m"):
        _record_under_a_cap(tmp_path, cap, says)


def _record_under_a_cap(tmp_path: Path, cap: str, says: str) -> None:
    served = serve_config(tmp_path, f"  - {{name: door, source: noise.mp4, segment_seconds: 1, {cap}}}\n")
    try:
        served.wait_for(lambda: served.stats()["door"]["segments_deleted"] >= 3, 60, "three segments deleted")
        kept, listed = served.wait_for(lambda: _kept_and_listed(served, "door"), 30, "stats and listing of the same moment")
        _, metrics, _ = served.get("/metrics")
        assert served.stop(signal.SIGTERM) == 130
    finally:
        served.kill()
    rows = indexed_and_playing(tmp_path / "recordings", "door")
    assert sum(row.bytes for row in rows) <= 1_500_000
    deleted = re.findall(rf"camera door: recordings {says}: deleted the (?:\d+ )?oldest segments? \([0-9.]+ MB\): (\S+)",
                         served.stderr)
    assert deleted, served.stderr
    assert all(not (tmp_path / "recordings" / path).exists() for path in deleted)
    assert min(row.start for row in rows) > max(_start_of(path) for path in deleted)
    assert kept["segments_kept"] == len(listed) and kept["recordings_bytes"] == sum(row["bytes"] for row in listed) <= 1_500_000
    assert kept["oldest_kept"] == listed[0]["start"] and kept["deletions"]["size"] == kept["segments_deleted"] >= 3
    assert kept["deletions"]["age"] == kept["deletions"]["free_space"] == 0
    for line in ('livedroid_camera_recordings_bytes{camera="door"}', 'livedroid_camera_segments_kept{camera="door"}',
                 'livedroid_camera_oldest_kept_timestamp_seconds{camera="door"}',
                 'livedroid_camera_segments_deleted_by_reason_total{camera="door",reason="size"}'):
        assert line.encode() in metrics, line


def _kept_and_listed(served: Served, camera: str) -> tuple[dict, list[dict]] | None:
    """The camera's stats and its listed segments, when no segment closed between the two."""
    listed = served.json(f"/api/recordings?camera={camera}")["recordings"]
    kept = served.stats()[camera]
    return (kept, listed) if listed and kept["segments_kept"] == len(listed) and kept["oldest_kept"] == listed[0]["start"] else None


def _start_of(relative: str) -> float:
    """When a segment began, from its name (NAME-YYYYmmdd-HHMMSS-mmm.mp4)."""
    stamp = Path(relative).stem.split("-", 1)[1]
    return datetime.strptime(stamp, "%Y%m%d-%H%M%S-%f").timestamp()


def test_every_closed_segment_keeps_the_cameras_audio(tmp_path: Path) -> None:
    """A clip with an AAC track played as a recording camera: each closed segment has an audio
    stream that plays as long as its video (as ``livedroid run`` keeps a file's audio)."""
    write_clip(tmp_path / "door.mp4", frames=45, size=(320, 180), fps=15, audio="aac")
    served = serve_config(tmp_path, "  - {name: door, source: door.mp4, segment_seconds: 1}\n")
    try:
        served.wait_for(lambda: served.stats()["door"]["segments_recorded"] >= 5, 60, "five closed segments")
        rows = served.json("/api/recordings?camera=door")["recordings"]
        assert served.stop(signal.SIGTERM) == 130
    finally:
        served.kill()
    assert len(rows) >= 5
    for row in rows:
        video_s, audio_s = decoded_seconds(tmp_path / row["path"])
        assert abs(audio_s - row["seconds"]) < 0.25 and abs(video_s - row["seconds"]) < 0.25, (row, video_s, audio_s)


def decoded_seconds(segment: Path) -> tuple[float, float]:
    """How long a segment's video and audio play, every frame and sample decoded."""
    with av.open(str(segment)) as container:
        assert container.streams.audio, f"{segment.name} has no audio"
        pictures = [frame.time for frame in container.decode(video=0)]
        container.seek(0)
        samples = sum(frame.samples for frame in container.decode(audio=0))
        rate = container.streams.audio[0].rate
    return pictures[-1] - pictures[0] + (pictures[1] - pictures[0]), samples / rate


def test_a_free_space_floor_deletes_the_oldest_segments_so_recording_goes_on(tmp_path: Path) -> None:
    """Noise (about 0.4 MB a segment) onto a 4 MB file system with a 1.5 MB floor and no size cap:
    the oldest segments go whenever the disk has less free, so it never fills and recording never
    stops; without the floor the disk fills and recording turns off. The floor logged is 1.5 MB, or
    three of the last segment's size where that is more."""
    noise_clip(tmp_path / "noise.mp4")
    with tmpfs(tmp_path / "small", "size=4m") as small:
        served = serve_config(tmp_path, "  - {name: door, source: noise.mp4, recordings: small/rec, segment_seconds: 1,"
                                        " recordings_min_free_gb: 0.0015}\n")
        try:
            least_free = 4 << 20
            deadline = time.monotonic() + 90
            while served.stats()["door"]["deletions"].get("free_space", 0) < 8 and time.monotonic() < deadline:
                least_free = min(least_free, shutil.disk_usage(small).free)
                time.sleep(0.2)
            stats = served.stats()["door"]
            assert served.stop(signal.SIGTERM) == 130
        finally:
            served.kill()
        rows = indexed_and_playing(small / "rec", "door")
        assert rows
    assert stats["deletions"]["free_space"] >= 8, (stats, served.stderr)
    assert (stats["recording"], stats["recording_error"], stats["recording_failures"]) == ("recording", None, 0)
    assert least_free > 500_000, least_free  # the floor less at most a segment in flight
    deleted = re.findall(r"camera door: small/rec has under (?:1\.[5-9]|[2-9]\.\d) MB free on its disk: deleted the (?:\d+ )?oldest segments? "
                         r"\([0-9.]+ MB\): (\S+)", served.stderr)
    assert deleted, served.stderr
    assert min(row.start for row in rows) > max(_start_of(path) for path in deleted)


def test_retention_by_age_keeps_each_kind_its_days_and_event_clips_longest(tmp_path: Path) -> None:
    """A still camera keeps continuous segments 3 s (in days); a moving one keeps motion a day:
    the still camera's old segments go (one line per pass, counted as age), the moving one's stay."""
    write_clip(tmp_path / "moving.mp4", frames=45, size=(320, 180), fps=15, audio=None)
    write_clip(tmp_path / "still.mp4", frames=45, size=(320, 180), fps=15, audio=None,
               draw=lambda _: np.full((180, 320, 3), 90, np.uint8))
    three_s = 3 / 86400
    served = serve_config(tmp_path, f"  - {{name: still, source: still.mp4, segment_seconds: 1, retain: {{continuous: {three_s}}}}}\n"
                                    f"  - {{name: moving, source: moving.mp4, segment_seconds: 1,"
                                    f" retain: {{continuous: {three_s}, motion: 1}}}}\n")
    try:
        served.wait_for(lambda: served.stats()["still"]["deletions"].get("age", 0) >= 4, 60, "four old still segments deleted")
        stats = served.stats()
        assert served.stop(signal.SIGTERM) == 130
    finally:
        served.kill()
    index = RecordingIndex(tmp_path / "recordings")
    still, moving = index.find("still"), index.find("moving")
    assert all(row.kind == "continuous" for row in still) and all(row.kind == "motion" for row in moving)
    assert stats["moving"]["deletions"]["age"] == 0 and len(moving) >= stats["moving"]["segments_recorded"] - 1
    assert max(row.end for row in still) - min(row.start for row in still) < 8  # 3 s kept, a pass and a segment more
    assert re.search(r"recordings recordings: deleted \d+ segments past their age \(\d+ continuous; [0-9.]+ MB\)", served.stderr)
    assert sorted(p.name for p in (tmp_path / "recordings" / "still").rglob("*.mp4"))[0] >= Path(still[0].path).name


def test_an_index_from_before_the_motion_column_still_opens(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "index.sqlite") as old:
        old.execute("CREATE TABLE segments (camera TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL,"
                    " path TEXT NOT NULL UNIQUE, bytes INTEGER NOT NULL, objects INTEGER NOT NULL, events INTEGER NOT NULL)")
        old.execute("INSERT INTO segments VALUES ('door', 1.0, 2.0, 'door/a.mp4', 10, 0, 1)")
    index = RecordingIndex(tmp_path)
    assert [(row.path, row.kind, row.motion) for row in index.find()] == [("door/a.mp4", "events", 0)]
    index.add(Segment("door", 3.0, 4.0, "door/b.mp4", 10, 0, 0, 5))
    assert [(row.path, row.kind) for row in index.find("door")] == [("door/a.mp4", "events"), ("door/b.mp4", "motion")]


@pytest.mark.parametrize(
    "marked, pre, post, dropped",
    [
        # ten 1-s segments 0..9; those marked hold an object. A segment is decided once the
        # newest starts over `pre` s after it ends: the rest stay undecided (kept) at the end.
        ({4}, 1.0, 1.0, {0, 1, 2, 6}),  # 3 and 5 lie within a second of 4; 7-9 undecided
        ({4}, 0.0, 0.0, {0, 1, 2, 3, 5, 6, 7}),  # only the marked one; a shared end is not within
        ({4}, 2.5, 0.5, {0}),  # 2.5 s before reaches into 1, 0.5 s after into 5; 6-9 undecided
        ({2, 6}, 1.0, 1.0, {0, 4}),  # two windows
        (set(), 1.0, 1.0, {0, 1, 2, 3, 4, 5, 6}),
    ],
)
def test_capture_window_keeps_the_seconds_around_each_mark(marked: set, pre: float, post: float, dropped: set) -> None:
    from livedroid.service.recordings import CaptureWindow

    window = CaptureWindow("objects", pre, post)
    gone = []
    for k in range(10):
        gone += window.closed(Segment("door", float(k), k + 1.0, f"s{k}.mp4", 1, int(k in marked), 0))
    assert {int(s.path[1:-4]) for s in gone} == dropped


def test_record_objects_keeps_only_the_seconds_around_them(tmp_path: Path, tiny_tflite: Path) -> None:
    """A 6 s looping clip whose red square shows for 1 s of each loop, ``record: objects`` with 1 s
    segments and 1 s before and after: the segments far from the square are deleted as soon as
    they can be, those around it stay and play."""
    from tests.conftest import draw_square_frame

    write_clip(tmp_path / "blink.mp4", frames=90, size=(160, 96), fps=15, audio=None,
               draw=lambda k: draw_square_frame(k, 160, 96, 32) if 30 <= k < 45 else np.full((96, 160, 3), 60, np.uint8))
    served = serve_config(tmp_path, f"  - {{name: door, source: blink.mp4, model: {tiny_tflite}, record: objects,"
                                    " segment_seconds: 1, pre_capture: 1, post_capture: 1, detect_fps: 15}\n")
    try:
        served.wait_for(lambda: served.stats()["door"]["deletions"].get("outside_capture", 0) >= 4, 90,
                        "four segments far from the square deleted")
        assert served.stop(signal.SIGTERM) == 130
    finally:
        served.kill()
    rows = indexed_and_playing(tmp_path / "recordings", "door")
    marked = [row for row in rows if row.objects]
    assert marked, "no segment with the square"
    undecided_after = rows[-1].start - 1.0  # the newest ones could still be claimed by a mark to come
    near = [any(m.start - 1.0 < row.end and row.start < m.end + 1.0 for m in marked) for row in rows]
    for row, close in zip(rows, near):
        assert close or row.end >= undecided_after, f"{row.path} kept with no object within 1 s"
    assert any(close and not row.objects for row, close in zip(rows, near)), "no pre- or post-capture segment kept"
