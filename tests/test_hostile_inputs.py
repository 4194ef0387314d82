"""Hostile inputs: each is handled correctly, or gets one clear line and a non-zero exit."""

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import needs_module, probe, read_jsonl, run_cli, shared_path, skip_unless_ci, write_clip


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


def test_corrupt_packets_mid_file_are_skipped_counted_and_warned_once(tmp_path: Path, default_model: Path) -> None:
    clip = damage(write_clip(tmp_path / "c.mp4", frames=60), at=0.5, size=3000)
    stderr, records = run_ok(tmp_path, clip, default_model)
    assert stderr.count("skipping undecodable data") == 1
    assert "undecodable skipped" in stderr
    assert 40 <= len(records) < 60


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


@pytest.mark.parametrize("make, exit_code, frames, message", [
    # head -c 1500000 of the quick-start clip: its index (at the start) points past the end
    (lambda tmp: _cut(shared_path("videos/intel_one-by-one-person-detection.mp4"), 1_500_000 / 3_291_918, tmp / "cut.mp4"),
     3, 629, "is damaged, cut short: read 629 of 1394 frames (62.9 of 139.4 s)"),
    (lambda tmp: _cut(_avi_announcing_twice(tmp / "whole.avi"), 2 / 3, tmp / "cut.avi"), 3, None, "is damaged"),
    # every packet reads: the header's count is not damage
    (lambda tmp: _avi_announcing_twice(tmp / "twice.avi"), 0, 40, None),
], ids=["cut mp4", "cut avi", "avi header announcing twice its frames"])
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
