"""Tiles: the grid covers the frame, NMS merges per class, and a real detector finds a small
object in a large frame only with tiles."""


import numpy as np
import pytest

from livedroid.detections import Detections, box_iou
from livedroid.detectors import load_detector
from livedroid.regions import TiledDetector, tile_grid
from livedroid.regions.tiles import merge_overlaps
from tests.conftest import read_jsonl, run_cli, square_position, write_clip
from tests.tiny_detector import red_square_image


@pytest.mark.parametrize(
    "width, height, tile, count",
    [
        (300, 300, (300, 300), 1),  # no larger than a tile: the frame itself
        (200, 100, (300, 300), 1),  # smaller: one tile, clipped to the frame
        (600, 300, (300, 300), 3),  # 25 % overlap needs a middle tile
        (3072, 1728, (300, 300), 14 * 8),
        (640, 384, (64, 64), 13 * 8),
    ],
)
def test_tiles_cover_the_frame_and_overlap(width: int, height: int, tile: tuple[int, int], count: int) -> None:
    tiles = tile_grid(width, height, tile)
    assert len(tiles) == count
    covered = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in tiles:
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert (x2 - x1, y2 - y1) == (min(tile[0], width), min(tile[1], height))
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    xs = sorted({x1 for x1, *_ in tiles})
    steps = np.diff(xs)
    assert all(step <= 0.75 * tile[0] + 1 for step in steps)  # neighbours share a quarter or more


def _detections(boxes: list[list[float]], scores: list[float], classes: list[int]) -> Detections:
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32),
                      np.array(classes, np.int32), [str(c) for c in classes])


@pytest.mark.parametrize(
    "boxes, scores, classes, kept_scores",
    [
        ([[0, 0, 10, 10], [1, 1, 11, 11]], [0.9, 0.8], [1, 1], [0.9]),  # one object seen twice
        ([[0, 0, 10, 10], [1, 1, 11, 11]], [0.7, 0.8], [1, 2], [0.7, 0.8]),  # two classes: both stay
        ([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8], [1, 1], [0.9, 0.8]),  # apart: both stay
        ([], [], [], []),
    ],
)
def test_nms_is_class_aware(boxes, scores, classes, kept_scores) -> None:
    kept = merge_overlaps(_detections(boxes, scores, classes))
    assert sorted(kept.scores.tolist()) == pytest.approx(sorted(kept_scores))


SMALL = (300, 200, 324, 224)  # 24 px: ~2 px once the 640x384 frame is shrunk to the model's 64x64
# One of the model's anchors (240x144 on this frame): larger than a tile, only the whole frame sees it.
LARGE = (180, 108, 420, 252)


def test_tiles_find_a_small_object_once(tiny_tflite) -> None:
    image = red_square_image((384, 640), SMALL)
    detector = load_detector(tiny_tflite, threads=1)
    assert len(detector.detect([image])[0].select(0.5)) == 0
    tiled = TiledDetector(detector, (64, 64))
    found = tiled.detect([image])[0].select(0.5)
    assert len(found) == 1, found.xyxy  # tiles that cut it drop their part; overlaps merge
    assert box_iou(SMALL, found.xyxy[0])[0] > 0.5
    assert tiled.calls == 1 + 13 * 8  # the whole frame and every tile


def test_tiles_keep_what_the_whole_frame_finds(tiny_tflite) -> None:
    image = red_square_image((384, 640), LARGE)
    detector = load_detector(tiny_tflite, threads=1)
    plain = detector.detect([image])[0].select(0.5)
    assert len(plain) >= 1 and box_iou(LARGE, plain.xyxy).max() > 0.9
    found = TiledDetector(detector, (64, 64)).detect([image])[0].select(0.5)
    assert box_iou(LARGE, found.xyxy).max() > 0.9


def test_a_frame_no_larger_than_a_tile_is_inferred_once(tiny_tflite) -> None:
    image = red_square_image((64, 64), (20, 20, 44, 44))
    detector = load_detector(tiny_tflite, threads=1)
    tiled = TiledDetector(detector, (64, 64))
    assert len(tiled.detect([image])[0].select(0.5)) == 1 and tiled.calls == 1


def test_default_tiles_are_twice_the_model_input(tiny_tflite) -> None:
    assert TiledDetector(load_detector(tiny_tflite, threads=1)).tile == (128, 128)


def test_run_with_tiles_finds_a_small_square_in_a_large_clip(tiny_tflite, tmp_path) -> None:
    """Through the command line: a 24 px square in 512x256 frames, lost without tiles."""
    frames, side, size = 8, 24, (512, 256)
    clip = write_clip(tmp_path / "wide.mp4", frames=frames, size=size, side=side, fps=8)
    found = {}
    for name, extra in (("plain", []), ("tiles", ["--tiles", "--tile-size", "64"])):
        result = run_cli("run", str(clip), "-m", str(tiny_tflite), "--jsonl", f"{name}.jsonl", "--no-video",
                         "--no-progress", *extra, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        records = read_jsonl(tmp_path / f"{name}.jsonl")
        found[name] = records
    assert not any(record["detections"] for record in found["plain"])
    assert "livedroid: tiles: 56.00 model runs a frame" in result.stderr  # the whole frame and 55 tiles
    for record in found["tiles"]:
        x, y = square_position(record["frame"], *size, side)
        overlaps = box_iou([x, y, x + side, y + side], [d["box"] for d in record["detections"]])
        assert overlaps.max() > 0.5 and overlaps.min() > 0.2, record  # found, and nothing elsewhere
