"""People found in a large frame with and without ``--tiles``, and what the tiles cost.

    nice -n 19 .venv/bin/python benchmarks/tiles_mosaic.py

The picture: 16 frames of the intel clip (768x432) spread over its length, in a 4x4 mosaic of
3072x1728, so each person keeps the pixels they had in the clip while the frame is 4K-sized
(``--grid 8``: 64 frames at half size, people half as tall, in the same 3072x1728).
The reference: the people the same model finds in each 768x432 frame on its own, placed (and
scaled) in the mosaic. A person counts as found when a "person" box of the mosaic overlaps theirs (IoU ≥ 0.5);
boxes that match no reference person are counted as extra.
"""

from __future__ import annotations

import argparse
import time

import av
import cv2
import numpy as np

from livedroid.detections import Detections, box_iou_matrix
from livedroid.detectors import load_detector
from livedroid.models import resolve_model
from livedroid.pixels import rgb_from_picture
from livedroid.regions import TiledDetector

CLIP = "../shared/videos/intel_one-by-one-person-detection.mp4"
MOSAIC_WIDTH = 3072


def spread_frames(clip: str, count: int) -> list[np.ndarray]:
    with av.open(clip) as container:
        stream = container.streams.video[0]
        total = stream.frames
        wanted = {round(i * (total - 1) / (count - 1)) for i in range(count)}
        return [rgb_from_picture(picture) for index, picture in enumerate(container.decode(stream)) if index in wanted]


def people(detections: Detections) -> np.ndarray:
    return detections.select(0.5, {"person"}).xyxy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=CLIP)
    parser.add_argument("--grid", type=int, default=4, help="frames per side of the mosaic (default 4)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each; the fastest is kept")
    parser.add_argument("--tile", type=int, nargs="+", default=[300], metavar="PX", help="tile sides to try (default 300)")
    args = parser.parse_args()
    grid = args.grid
    frames = spread_frames(args.clip, grid * grid)
    detector = load_detector(resolve_model(None), threads=1)
    found_alone = detector.detect(frames)
    height, width = frames[0].shape[:2]
    scale = MOSAIC_WIDTH / (grid * width)
    width, height = round(width * scale), round(height * scale)
    reference = np.concatenate([
        scale * people(found).reshape(-1, 4) + np.array([(i % grid) * width, (i // grid) * height] * 2, np.float32)
        for i, found in enumerate(found_alone)
    ])
    tiles = [cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in frames]
    mosaic = np.concatenate([np.concatenate(tiles[row * grid:(row + 1) * grid], axis=1) for row in range(grid)])
    print(f"mosaic {mosaic.shape[1]}x{mosaic.shape[0]} of {len(frames)} frames; reference: {len(reference)} people "
          f"found in the frames one by one")
    heights = reference[:, 3] - reference[:, 1]
    print(f"their heights: {heights.min():.0f}-{heights.max():.0f} px (median {np.median(heights):.0f})")
    candidates = [("whole frame", detector)] + [(f"tiles {side}", TiledDetector(detector, (side, side))) for side in args.tile]
    for name, candidate in candidates:
        seconds = []
        for _ in range(args.repeat):
            began = time.process_time()
            found = people(candidate.detect([mosaic])[0])
            seconds.append(time.process_time() - began)
        iou = box_iou_matrix(reference, found) if len(found) else np.zeros((len(reference), 0))
        matched = int((iou >= 0.5).any(axis=1).sum()) if iou.size else 0
        extra = int((~(iou >= 0.5).any(axis=0)).sum()) if iou.size else len(found)
        runs = candidate.calls // args.repeat if isinstance(candidate, TiledDetector) else 1
        print(f"{name:<12} people found {matched}/{len(reference)} ({100 * matched / len(reference):.0f} %), "
              f"extra boxes {extra}, {runs} model runs, CPU {1000 * min(seconds):.0f} ms a frame (1 thread)")


if __name__ == "__main__":
    main()
