from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.sinks import JsonLinesSink, VideoSink
from livedroid.sources import open_source
from tests.conftest import probe, run_cli, tmpfs, write_clip


def copy_through(source_path: Path, output: Path, **options) -> None:
    """Write every frame of a clip through VideoSink, as the pipeline does."""
    source = open_source(str(source_path))
    sink = VideoSink(output, fps=source.fps, time_base=source.time_base, audio_from=source.audio_path, **options)
    for frame in source.frames():
        sink.write(frame, Detections(), frame.image)
    sink.close()
    source.close()


@pytest.mark.parametrize(
    "audio, suffix, expected_audio, expected_codec",
    [
        ("aac", ".mp4", ["aac"], "h264"),  # copied
        ("aac", ".webm", ["opus"], "vp9"),  # WebM: VP9, audio re-encoded as Opus at 48 kHz
        ("mp3", ".mp4", ["mp3"], "h264"),  # copied: mp4 stores mp3
        ("pcm_s16le", ".mp4", ["aac"], "h264"),  # re-encoded: mp4 cannot hold pcm
        ("pcm_s16le", ".mkv", ["pcm_s16le"], "h264"),  # matroska holds anything
        (None, ".mp4", [], "h264"),
    ],
)
def test_output_keeps_frames_duration_and_audio(tmp_path: Path, audio, suffix, expected_audio, expected_codec) -> None:
    container = ".mkv" if audio == "pcm_s16le" else ".mp4"
    clip = write_clip(tmp_path / f"in{container}", frames=20, fps=10, audio=audio)
    output = tmp_path / f"out{suffix}"
    copy_through(clip, output)
    source, result = probe(clip), probe(output)
    assert result["frames"] == source["frames"] == 20
    assert result["pts"] == pytest.approx(source["pts"])
    assert result["codec"] == expected_codec and result["pix_fmt"] == "yuv420p"
    assert result["audio"] == expected_audio
    assert not (tmp_path / f"out{suffix}.partial").exists()


def test_variable_frame_rate_timestamps_are_kept(tmp_path: Path) -> None:
    output = tmp_path / "vfr.mp4"
    sink = VideoSink(output, fps=10, time_base=Fraction(1, 1000))
    stamps = [0, 100, 150, 400, 410, 900]  # milliseconds, irregular
    for index, ms in enumerate(stamps):
        image = np.full((64, 64, 3), index * 30, np.uint8)
        sink.write(Frame(image, index, pts=ms, time_base=Fraction(1, 1000)), Detections(), image)
    sink.close()
    assert probe(output)["pts"] == pytest.approx([s / 1000 for s in stamps], abs=1e-3)


def test_odd_frame_sizes_are_padded_to_even(tmp_path: Path) -> None:
    output = tmp_path / "odd.mp4"
    sink = VideoSink(output, fps=5, time_base=None)
    for index in range(3):
        image = np.zeros((45, 77, 3), np.uint8)
        sink.write(Frame(image, index), Detections(), image)
    sink.close()
    info = probe(output)
    assert (info["width"], info["height"], info["frames"]) == (78, 46, 3)


def test_existing_output_is_refused_without_overwrite(tmp_path: Path) -> None:
    existing = tmp_path / "out.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(UserError, match="--overwrite"):
        VideoSink(existing, fps=10, time_base=None)
    with pytest.raises(UserError, match="--overwrite"):
        JsonLinesSink(existing)
    assert existing.read_bytes() == b"keep me"
    VideoSink(existing, fps=10, time_base=None, overwrite=True)


def test_the_input_is_never_overwritten(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4")
    with pytest.raises(UserError, match="is the input itself"):
        VideoSink(clip, fps=10, time_base=None, overwrite=True, inputs=(str(clip),))


def test_unfinished_output_stays_partial(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    sink = VideoSink(output, fps=10, time_base=None)
    image = np.zeros((32, 32, 3), np.uint8)
    for index in range(60):  # past the encoder's look-ahead, so packets reach the file
        sink.write(Frame(image, index), Detections(), image)
    assert not output.exists() and (tmp_path / "out.mp4.partial").exists()
    sink.close()
    assert output.exists() and not (tmp_path / "out.mp4.partial").exists()


def test_unsupported_extension(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unsupported video extension"):
        VideoSink(tmp_path / "out.gif", fps=10, time_base=None)


@pytest.mark.parametrize("full", [True, False], ids=["already full", "fills during the run"])
def test_run_onto_a_full_disk_is_one_line_never_a_crash(tmp_path: Path, default_model: Path, full: bool) -> None:
    """A 1 MB file system: full before the first frame (was SIGSEGV, exit 139: the encoder's last
    packets muxed into a container whose header had failed), or filled by the video itself."""
    clip = write_clip(tmp_path / "clip.mp4", frames=120, size=(320, 240), audio=None,
                      draw=lambda i: np.random.default_rng(i).integers(0, 255, (240, 320, 3), dtype=np.uint8))
    with tmpfs(tmp_path / "tiny", "size=1m") as tiny:
        if full:
            with open(tiny / "fill", "wb", buffering=0) as fill:
                try:
                    while fill.write(b"\0" * 4096):
                        pass
                except OSError:  # the disk is full
                    pass
        result = run_cli("run", str(clip), "-m", str(default_model), "-o", str(tiny / "new.mp4"), "--no-progress", cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        assert errors == [f"livedroid: error: cannot write {tiny / 'new.mp4'}: No space left on device"], result.stderr
        assert not (tiny / "new.mp4").exists()


@pytest.mark.parametrize("suffix, codec", [(".mov", "h264"), (".avi", "h264"), (".mkv", "h264"), (".webm", "vp9")])
def test_run_writes_each_container_the_readme_lists(tmp_path: Path, suffix: str, codec: str, livedroid_main) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=12, audio=None)
    result = livedroid_main("run", str(clip), "-o", f"out{suffix}", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = probe(tmp_path / f"out{suffix}")
    assert written["frames"] == 12 and written["codec"] == codec


def test_crf_and_preset_reach_the_encoder(tmp_path: Path, livedroid_main) -> None:
    """``run --crf --preset``: a higher crf is a smaller file at the same preset; another preset another file."""
    clip = write_clip(tmp_path / "clip.mp4", frames=30, size=(320, 192), audio=None)
    sizes = {}
    for crf, preset in ((18, "superfast"), (40, "superfast"), (18, "ultrafast")):
        output = f"{crf}-{preset}.mp4"
        result = livedroid_main("run", str(clip), "-o", output, "--crf", str(crf), "--preset", preset, "--no-progress", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        sizes[crf, preset] = (tmp_path / output).stat().st_size
    assert sizes[40, "superfast"] < sizes[18, "superfast"] * 0.8
    assert sizes[18, "ultrafast"] != sizes[18, "superfast"]
