from pathlib import Path

import cv2
import numpy as np
import pytest

from livedroid.errors import UserError
from livedroid.sources import CameraSource, ImageSource, VideoSource, mask_credentials, open_source
from tests.conftest import write_clip


def test_video_source_keeps_index_pts_and_rate(tmp_path: Path) -> None:
    source = open_source(str(write_clip(tmp_path / "c.mp4", frames=12, fps=12)))
    assert isinstance(source, VideoSource) and not source.live
    assert source.fps == pytest.approx(12)
    assert source.frame_count == 12
    assert source.audio_path is not None
    frames = list(source.frames())
    assert [f.index for f in frames] == list(range(12))
    assert [round(f.timestamp, 3) for f in frames] == [round(i / 12, 3) for i in range(12)]
    assert frames[0].image.shape == (96, 160, 3)
    # the square is red in RGB order
    assert frames[0].image[48, 10].tolist() == pytest.approx([230, 20, 20], abs=12)


def test_video_without_audio_has_no_audio_path(tmp_path: Path) -> None:
    assert open_source(str(write_clip(tmp_path / "c.mp4", audio=None))).audio_path is None


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.mp4", "source not found"),
        (lambda d: (d / "fake.mp4").write_bytes(b"this is not a video" * 100) and d / "fake.mp4", "not a readable video"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "no images"),
        (lambda d: d / "nothing*.jpg", "no images match"),
        (lambda d: d / "missing.jpg", "image not found"),
    ],
)
def test_bad_sources_are_clear_errors(tmp_path: Path, make, message) -> None:
    with pytest.raises(UserError, match=message):
        open_source(str(make(tmp_path)))


def test_unreachable_camera_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="cannot open camera"):
        CameraSource("/dev/video99")


@pytest.mark.parametrize(
    "name, image",
    [
        ("gray.png", np.full((20, 30), 128, np.uint8)),
        ("alpha.png", np.dstack([np.full((20, 30, 3), 50, np.uint8), np.full((20, 30), 255, np.uint8)])),
        ("deep.png", np.full((20, 30, 3), 65535, np.uint16)),
        ("colour.jpg", np.full((20, 30, 3), (255, 0, 0), np.uint8)),  # BGR blue
    ],
)
def test_images_of_any_mode_become_rgb(tmp_path: Path, name: str, image: np.ndarray) -> None:
    cv2.imwrite(str(tmp_path / name), image)
    (frame,) = list(ImageSource(str(tmp_path / name)).frames())
    assert frame.image.shape == (20, 30, 3) and frame.image.dtype == np.uint8
    assert frame.name == name
    if name == "colour.jpg":
        assert frame.image[0, 0, 2] > 200  # blue lands in the last RGB channel


def test_folder_and_glob_sources_list_images_in_order(tmp_path: Path) -> None:
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((4, 4, 3), np.uint8))
    assert [p.name for p in ImageSource(str(tmp_path)).paths] == ["a.jpg", "b.png"]
    assert [p.name for p in ImageSource(str(tmp_path / "*.png")).paths] == ["b.png"]


def test_unreadable_image_in_a_folder_is_skipped_and_counted(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "good.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    source = ImageSource(str(tmp_path))
    assert [f.name for f in source.frames()] == ["good.png"]
    assert source.skipped == 1


@pytest.mark.parametrize(
    "text, masked",
    [
        ("rtsp://user:secret@10.0.0.2:554/live", "rtsp://***@10.0.0.2:554/live"),
        ("error opening rtsp://a:b@cam/x: 401", "error opening rtsp://***@cam/x: 401"),
        ("rtsp://cam/stream", "rtsp://cam/stream"),
    ],
)
def test_credentials_are_masked(text: str, masked: str) -> None:
    assert mask_credentials(text) == masked


def test_camera_source_reads_rgb_frames_stamped_with_capture_time(tmp_path: Path) -> None:
    # No camera here: OpenCV's capture reads a clip through the same API a V4L2 device uses.
    source = CameraSource(str(write_clip(tmp_path / "cam.mp4", frames=6, audio=None)))
    frames = list(source.frames())
    source.close()
    assert source.live and [f.index for f in frames] == list(range(6))
    assert frames[0].image[48, 10].tolist() == pytest.approx([230, 20, 20], abs=12)  # RGB, not BGR
    assert all(a.timestamp <= b.timestamp for a, b in zip(frames, frames[1:]))
    assert frames[0].captured_at > 0
