"""The motion gate: it skips still frames, and its detections match the ungated detector's."""

from pathlib import Path

import numpy as np
import pytest

from livedroid.detections import box_iou_matrix
from livedroid.detectors import load_detector
from livedroid.regions import MotionGatedDetector
from livedroid.regions.motion import MotionGate, crop_around
from livedroid.sources import VideoSource
from tests.conftest import run_cli, write_clip

SIZE, SIDE, FRAMES = 256, 96, 40


def square_at(index: int) -> tuple[int, int]:
    """Moves right for 12 frames, stands still for 16, moves again (the known moving object)."""
    step = min(index, 12) + max(0, index - 28)
    return 10 + 6 * step, (SIZE - SIDE) // 2


def draw(index: int) -> np.ndarray:
    image = np.full((SIZE, SIZE, 3), 20, np.uint8)  # dark: the square stands out in grey too
    x, y = square_at(index)
    image[y:y + SIDE, x:x + SIDE] = (230, 20, 20)
    return image


@pytest.fixture
def moving_clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "moving.mp4", frames=FRAMES, size=(SIZE, SIZE), fps=10, draw=draw)


def decoded(clip: Path) -> list[np.ndarray]:
    source = VideoSource(str(clip))
    frames = [frame.image for frame in source.frames()]
    source.close()
    return frames


def test_gated_detections_match_the_ungated_ones_and_still_frames_are_skipped(moving_clip, tiny_tflite) -> None:
    detector = load_detector(tiny_tflite, threads=1)
    gated = MotionGatedDetector(load_detector(tiny_tflite, threads=1), full_every=10)
    frames = decoded(moving_clip)
    matched = total = 0
    for image in frames:
        plain = detector.detect([image])[0].select(0.5)
        found = gated.detect([image])[0].select(0.5)
        total += len(plain)
        if len(plain) and len(found):
            matched += int((box_iou_matrix(plain.xyxy, found.xyxy) >= 0.5).any(axis=1).sum())
    assert total >= FRAMES  # the square is found in every frame
    assert matched >= 0.97 * total, f"{matched} of {total}"
    # still frames cost nothing, and the moving square is inferred every third frame, carried between
    assert gated.frames == FRAMES and gated.calls < 0.5 * FRAMES


@pytest.mark.parametrize(
    "change, light_change, moving",
    [
        (lambda image: image, False, False),  # the same picture
        (lambda image: np.clip(image.astype(int) + 80, 0, 255).astype(np.uint8), True, True),  # lights on
        (lambda image: draw(30), False, True),  # the square moved on
    ],
)
def test_the_gate_sees_motion_and_light_changes(change, light_change: bool, moving: bool) -> None:
    gate = MotionGate()
    for _ in range(3):
        gate.update(draw(0))
    boxes = gate.update(change(draw(0)))
    assert gate.light_change == light_change
    assert (len(boxes) > 0) == moving


@pytest.mark.parametrize(
    "box, crop",
    [
        ((100, 100, 110, 110), (55, 55, 155, 155)),  # small: the model's input (100) around it
        ((0, 0, 80, 40), (0, 0, 160, 160)),  # twice its side, kept inside the frame
        ((10, 10, 190, 190), (0, 0, 200, 200)),  # larger than the frame: the frame
    ],
)
def test_crops_hold_their_area_with_context(box, crop) -> None:
    assert crop_around(np.array(box, np.float32), (100, 100), 200, 200) == crop


def test_run_with_motion_reports_model_runs_a_frame(moving_clip, tiny_tflite, tmp_path: Path) -> None:
    result = run_cli("run", str(moving_clip), "-m", str(tiny_tflite), "--motion", "--jsonl", "out.jsonl",
                     "-o", "out.mp4", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "livedroid: motion: " in result.stderr and "model runs a frame" in result.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == FRAMES


@pytest.mark.parametrize(
    "args, message",
    [
        (["--motion", "--tiles"], "--tiles and --motion cannot be combined"),
        (["--motion", "--workers", "2"], "--motion needs the frames in order"),
        (["--motion", "--full-every", "0"], "argument --full-every: expected a whole number of at least 1, got 0"),
        (["--motion", "--detect-every", "0"], "argument --detect-every: expected a whole number of at least 1, got 0"),
        (["--tiles", "--tile-size", "-5"], "argument --tile-size: expected a tile side in pixels of at least 32, got -5"),
    ],
)
def test_region_option_mistakes_are_one_line(moving_clip, tiny_tflite, tmp_path: Path, args, message, livedroid_main) -> None:
    result = livedroid_main("run", str(moving_clip), "-m", str(tiny_tflite), *args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_moving_camera_gets_a_full_pass_every_frame(tiny_tflite) -> None:
    """Motion all over the picture: carried boxes would fall behind, so nothing is carried."""
    texture = np.random.default_rng(0).integers(0, 255, (SIZE, 2 * SIZE, 3), dtype=np.uint8)
    texture = np.kron(texture[::16, ::16], np.ones((16, 16, 1), np.uint8))  # blocks the gate sees
    gated = MotionGatedDetector(load_detector(tiny_tflite, threads=1))
    for step in range(12):
        gated.detect([np.ascontiguousarray(texture[:, 8 * step:8 * step + SIZE])])
    assert gated.calls == gated.frames == 12
