"""Hostile inputs: each is handled correctly, or gets one clear line and a non-zero exit."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from livedroid.sources.video import MAX_UNDECODABLE_SHARE
from tests.conftest import needs_module, probe, read_jsonl, run_cli, shared_path, skip_unless_ci, start_cli_until, write_clip


def run_ok(tmp_path: Path, source: Path | str, model: Path, *extra: str) -> tuple[str, list[dict]]:
    """Run, expect success, and check what a user would: outputs agree frame for frame."""
    result = run_cli("run", str(source), "-m", str(model), "-o", "out.mp4", "--jsonl", "out.jsonl",
                     "--no-progress", *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    records = read_jsonl(tmp_path / "out.jsonl")
    assert probe(tmp_path / "out.mp4")["frames"] == len(records) > 0
    assert f"{len(records)} processed" in result.stderr
    return result.stderr, records


def damage(path: Path, at: float, size: int) -> Path:
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    data[start : start + size] = np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8).tobytes()
    damaged = path.with_name("damaged" + path.suffix)
    damaged.write_bytes(bytes(data))
    return damaged


def test_a_glitch_in_a_long_clip_is_skipped_counted_and_warned_once(tmp_path: Path, default_model: Path) -> None:
    """200 bad bytes in 600 frames: a few undecodable packets, under MAX_UNDECODABLE_SHARE, are a
    glitch, not damage: the run goes on to the end and succeeds."""
    clip = damage(write_clip(tmp_path / "c.mp4", frames=600, audio=None), at=0.5, size=200)
    stderr, records = run_ok(tmp_path, clip, default_model)
    assert stderr.count("skipping undecodable data") == 1
    skipped = int(re.search(r"(\d+) undecodable skipped", stderr).group(1))
    assert 1 <= skipped <= 600 * MAX_UNDECODABLE_SHARE
    assert 580 <= len(records) < 600


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_damaged_or_truncated_streamable_files_keep_what_they_have(tmp_path: Path, default_model: Path, suffix: str) -> None:
    clip = write_clip(tmp_path / f"c{suffix}", frames=60, format="matroska" if suffix == ".mkv" else None)
    if suffix == ".mkv":  # streamable: cut it short
        cut = tmp_path / "cut.mkv"
        cut.write_bytes(clip.read_bytes()[: len(clip.read_bytes()) * 6 // 10])
    else:  # index at the end: a cut file has no index at all
        cut = tmp_path / "cut.mp4"
        cut.write_bytes(clip.read_bytes()[: len(clip.read_bytes()) * 6 // 10])
        result = run_cli("run", str(cut), "-m", str(default_model), cwd=tmp_path)
        assert result.returncode == 2 and "cut.mp4: not a readable video: truncated" in result.stderr
        assert "Traceback" not in result.stderr
        return
    result = run_cli("run", str(cut), "-m", str(default_model), "--jsonl", "out.jsonl", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert f"livedroid: error: {cut} is damaged, cut short: read " in result.stderr
    assert 0 < len(read_jsonl(tmp_path / "out.jsonl")) < 60


def test_header_that_lies_about_frame_count(tmp_path: Path, default_model: Path) -> None:
    clip = write_clip(tmp_path / "c.avi", frames=30, codec="mpeg4", audio=None)
    data = bytearray(clip.read_bytes())
    strh = data.index(b"strh")
    data[strh + 40 : strh + 44] = (5).to_bytes(4, "little")  # dwLength: "5 frames"
    avih = data.index(b"avih")
    data[avih + 24 : avih + 28] = (5).to_bytes(4, "little")  # dwTotalFrames
    clip.write_bytes(bytes(data))
    _, records = run_ok(tmp_path, clip, default_model)
    assert len(records) == 30


def test_stream_without_duration_or_container(tmp_path: Path, default_model: Path) -> None:
    raw = write_clip(tmp_path / "c.h264", frames=20, audio=None, format="h264")
    _, records = run_ok(tmp_path, raw, default_model)
    assert len(records) == 20


def test_audio_as_the_first_stream(tmp_path: Path, default_model: Path) -> None:
    clip = write_clip(tmp_path / "c.mkv", frames=20, audio_first=True, format="matroska")
    _, records = run_ok(tmp_path, clip, default_model)
    assert len(records) == 20
    assert probe(tmp_path / "out.mp4")["audio"] == ["aac"]


def test_odd_frame_size_input(tmp_path: Path, default_model: Path) -> None:
    clip = write_clip(tmp_path / "c.mkv", frames=10, size=(161, 97), codec="ffv1", pix_fmt="yuv444p",
                      audio=None, format="matroska")
    _, records = run_ok(tmp_path, clip, default_model)
    assert (records[0]["width"], records[0]["height"]) == (161, 97)
    info = probe(tmp_path / "out.mp4")
    assert (info["width"], info["height"]) == (162, 98)


def test_rotation_metadata_is_applied(tmp_path: Path, default_model: Path) -> None:
    if not shutil.which("ffmpeg"):
        skip_unless_ci("needs the ffmpeg command to set rotation metadata")
    clip = write_clip(tmp_path / "c.mp4", frames=10, size=(160, 96))
    rotated = tmp_path / "phone.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-c", "copy", "-metadata:s:v", "rotate=90",
                    str(rotated)], check=True)
    _, records = run_ok(tmp_path, rotated, default_model)
    assert (records[0]["width"], records[0]["height"]) == (96, 160)  # upright, as players show it
    info = probe(tmp_path / "out.mp4")
    assert (info["width"], info["height"]) == (96, 160)


def test_grayscale_cmyk_and_alpha_images(tmp_path: Path, default_model: Path) -> None:
    image_module = needs_module("PIL.Image", "Pillow writes the CMYK JPEG")
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "gray.png"), np.full((60, 80), 120, np.uint8))
    cv2.imwrite(str(folder / "alpha.png"), np.full((60, 80, 4), 200, np.uint8))
    image_module.new("CMYK", (80, 60), (0, 255, 255, 0)).save(folder / "cmyk.jpg")
    result = run_cli("run", str(folder), "-m", str(default_model), "-o", "annotated", "--jsonl", "d.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "annotated").iterdir()) == ["alpha.png", "cmyk.jpg", "gray.png"]
    cmyk = cv2.imread(str(tmp_path / "annotated" / "cmyk.jpg"))
    assert cmyk[30, 40, 2] > 200 and cmyk[30, 40, 1] < 60  # CMYK (0, 255, 255, 0) is red


def test_model_with_an_unknown_output_layout(tmp_path: Path, clip: Path) -> None:
    tf = needs_module("tensorflow", "building a TFLite model needs TensorFlow")
    model = tf.keras.Sequential([tf.keras.Input((32, 32, 3)), tf.keras.layers.Conv2D(4, 3), tf.keras.layers.Flatten()])
    (tmp_path / "classifier.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    result = run_cli("run", str(clip), "-m", "classifier.tflite", cwd=tmp_path)
    assert result.returncode == 2 and "unknown output layout" in result.stderr
    assert "Traceback" not in result.stderr


def test_label_map_with_duplicate_ids(tmp_path: Path, clip: Path, default_model: Path) -> None:
    (tmp_path / "dup.pbtxt").write_text("item { id: 1 name: 'R2-D2' }\nitem { id: 1 name: 'BB-8' }\n")
    result = run_cli("run", str(clip), "-m", str(default_model), "--labels", "dup.pbtxt", cwd=tmp_path)
    assert result.returncode == 2
    assert "dup.pbtxt: id 1 is used twice ('R2-D2' and 'BB-8')" in result.stderr


def test_empty_folder(tmp_path: Path, default_model: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("run", "empty", "-m", str(default_model), cwd=tmp_path)
    assert result.returncode == 2 and "no images" in result.stderr and "Traceback" not in result.stderr


def _cut(path: Path, fraction: float, out: Path) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def _avi_announcing_twice(path: Path) -> Path:
    """An AVI whose headers (avih dwTotalFrames, strh dwLength) announce twice the frames it holds."""
    import struct

    data = bytearray(write_clip(path, frames=40, codec="mpeg4", audio=None).read_bytes())
    for chunk, offset in ((b"avih", 16), (b"strh", 32)):
        at = data.find(chunk) + 8 + offset
        struct.pack_into("<I", data, at, 2 * struct.unpack_from("<I", data, at)[0])
    path.write_bytes(data)
    return path


def _random_bytes(path: Path, start: float, end: float) -> Path:
    """``path`` with the bytes from ``start`` to ``end`` (shares of its size) overwritten by noise."""
    data = bytearray(path.read_bytes())
    first, last = int(len(data) * start), int(len(data) * end)
    data[first:last] = np.random.default_rng(0).integers(0, 256, last - first, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def _header_only(path: Path) -> Path:
    """A Matroska file cut just before its first Cluster: a header announcing a stream, no frame."""
    data = write_clip(path, frames=30, format="matroska", audio=None).read_bytes()
    path.write_bytes(data[: data.find(bytes.fromhex("1F43B675"))])
    return path


@pytest.mark.parametrize("make, exit_code, frames, message", [
    # head -c 1500000 of the quick-start clip: its index (at the start) points past the end
    (lambda tmp: _cut(shared_path("videos/intel_one-by-one-person-detection.mp4"), 1_500_000 / 3_291_918, tmp / "cut.mp4"),
     3, 629, "is damaged, cut short: read 629 of 1394 frames (62.9 of 139.4 s)"),
    (lambda tmp: _cut(_avi_announcing_twice(tmp / "whole.avi"), 2 / 3, tmp / "cut.avi"), 3, None, "is damaged"),
    # the frame data (the MP4's mdat, its index at the end) overwritten with noise: packets that
    # demux by the index but do not decode
    (lambda tmp: _random_bytes(write_clip(tmp / "noise.mp4", frames=150, size=(320, 180)), 0.2, 0.8),
     3, None, "is damaged, 94 of its 150 video packets could not be decoded: read 56 of 150 frames (3.7 of 10.0 s)"),
    # Matroska skips unreadable bytes to the next cluster without an error: the hole tells
    (lambda tmp: _random_bytes(write_clip(tmp / "noise.mkv", frames=150, size=(320, 180), format="matroska"), 1 / 3, 2 / 3),
     3, None, "is damaged, 84 kB of it could not be read from 3.3 s on: read 77 frames (5.1 of 10.0 s)"),
    # every packet reads: the header's count is not damage
    (lambda tmp: _avi_announcing_twice(tmp / "twice.avi"), 0, 40, None),
], ids=["cut mp4", "cut avi", "mp4 frame data overwritten", "matroska with noise mid-file", "avi header announcing twice its frames"])
def test_a_damaged_file_keeps_what_was_read_and_is_never_success(tmp_path: Path, default_model: Path, make, exit_code, frames, message) -> None:
    source = make(tmp_path)
    result = run_cli("run", str(source), "-m", str(default_model), "-o", "out.mp4", "--jsonl", "out.jsonl",
                     "--no-progress", cwd=tmp_path)
    assert result.returncode == exit_code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("livedroid: error:")]
    if message:
        assert len(errors) == 1 and errors[0].startswith(f"livedroid: error: {source} {message}"), result.stderr
        assert errors[0].endswith("; the outputs hold what was read")
    else:
        assert errors == [], result.stderr
    written = read_jsonl(tmp_path / "out.jsonl")
    assert written and (frames is None or len(written) == frames)
    assert probe(tmp_path / "out.mp4")["frames"] == len(written)  # kept, and it plays


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_file_truncated_while_run_reads_it_is_damaged_and_keeps_what_was_read(tmp_path: Path, default_model: Path, suffix: str) -> None:
    """The 150 frames of noise take 15 s with the slow backend (0.1 s a frame): the clip is cut
    to 45 % once the first record is written, while the reader is a few frames ahead."""
    rng = np.random.default_rng(7)
    clip = write_clip(tmp_path / f"clip{suffix}", frames=150, size=(320, 240), audio=None,
                      format="matroska" if suffix == ".mkv" else None,
                      draw=lambda _: rng.integers(0, 256, (240, 320, 3), np.uint8))
    process = start_cli_until("run", str(clip), "-m", str(default_model), "--backend", "slow", "-o", "out.mp4",
                              "--jsonl", "out.jsonl", "--no-progress", cwd=tmp_path, grows=tmp_path / "out.jsonl.partial",
                              min_bytes=1, module="tests.extra_backends")
    os.truncate(clip, int(clip.stat().st_size * 0.45))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 3, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("livedroid: error:")]
    assert len(errors) == 1 and f"{clip} is damaged, cut short: read " in errors[0], stderr
    written = read_jsonl(tmp_path / "out.jsonl")
    assert 40 <= len(written) <= 70 and probe(tmp_path / "out.mp4")["frames"] == len(written)
    assert "Traceback" not in stderr


def test_a_video_with_no_frame_is_one_line_and_never_success(tmp_path: Path, default_model: Path) -> None:
    result = run_cli("run", str(_header_only(tmp_path / "empty.mkv")), "-m", str(default_model), "-o", "out.mp4",
                     cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"livedroid: error: {tmp_path / 'empty.mkv'}: ends before its first frame: "
                                                  "an empty or truncated video"]
    assert not list(tmp_path.glob("out.mp4*"))
