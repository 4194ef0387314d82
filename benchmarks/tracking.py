"""Cost of tracking + zones + lines per frame with N moving objects, and of the `trackers`
package's ByteTrack (supervision's former tracker) on the same detections when it is installed.

    nice -n 19 .venv/bin/python benchmarks/tracking.py --objects 20 --frames 1000

Objects are SIDE-pixel boxes moving at constant random velocities on a 1280x720 frame, bouncing
off its edges, with 1-pixel box noise and random scores in 0.5–0.95. The median of the per-frame
times is reported (the machine may be shared: the median ignores the odd preempted frame).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from livedroid.analytics import ZoneAnalytics, parse_shape
from livedroid.detections import Detections
from livedroid.frames import Frame
from livedroid.tracking import ByteTracker

WIDTH, HEIGHT, SIDE = 1280, 720, 60


def scenes(objects: int, frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    position = rng.uniform(0, (WIDTH - SIDE, HEIGHT - SIDE), (objects, 2))
    velocity = rng.uniform(-6, 6, (objects, 2))
    for _ in range(frames):
        position += velocity
        bounced = (position < 0) | (position > (WIDTH - SIDE, HEIGHT - SIDE))
        velocity[bounced] *= -1
        position = np.clip(position, 0, (WIDTH - SIDE, HEIGHT - SIDE))
        xyxy = np.concatenate([position, position + SIDE], axis=1) + rng.normal(0, 1, (objects, 4))
        yield xyxy.astype(np.float32), rng.uniform(0.5, 0.95, objects).astype(np.float32)


def median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times[len(times) // 10 :])  # after the warm-up


def bench_livedroid(objects: int, frames: int) -> tuple[float, float, int]:
    tracker = ByteTracker(0.5, 0.1)
    analytics = ZoneAnalytics([
        parse_shape("zone", "left=0,0,0.5,0,0.5,1,0,1"), parse_shape("zone", "centre=0.3,0.3,0.7,0.3,0.7,0.7,0.3,0.7"),
        parse_shape("line", "middle=0.5,0,0.5,1"), parse_shape("line", "across=0,0.5,1,0.5"),
    ])
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    tracking, total = [], []
    for index, (xyxy, scores) in enumerate(scenes(objects, frames)):
        detections = Detections(xyxy, scores, np.ones(objects, np.int32), ["thing"] * objects)
        frame = Frame(image, index, pts=index, time_base=None)
        began = time.perf_counter()
        tracked = tracker.update(detections, frame)
        middle = time.perf_counter()
        analytics.update(tracked, frame)
        ended = time.perf_counter()
        tracking.append(middle - began)
        total.append(ended - began)
    return median_ms(tracking), median_ms(total), tracker.tracks_started


def bench_trackers_package(objects: int, frames: int) -> tuple[float, int] | None:
    try:
        import supervision as sv
        from trackers import ByteTrackTracker
    except ImportError:
        return None
    tracker = ByteTrackTracker()
    times, ids = [], set()
    for xyxy, scores in scenes(objects, frames):
        detections = sv.Detections(xyxy=xyxy, confidence=scores, class_id=np.ones(objects, int))
        began = time.perf_counter()
        out = tracker.update(detections)
        times.append(time.perf_counter() - began)
        ids.update(int(t) for t in out.tracker_id if t >= 0)
    return median_ms(times), len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--frames", type=int, default=1000)
    args = parser.parse_args()
    tracking, total, tracks = bench_livedroid(args.objects, args.frames)
    print(f"{args.objects} objects, {args.frames} frames, median ms per frame:")
    print(f"  livedroid ByteTracker             {tracking:6.3f} ms   ({tracks} tracks)")
    print(f"  livedroid tracker + 2 zones + 2 lines {total:6.3f} ms")
    other = bench_trackers_package(args.objects, args.frames)
    if other:
        print(f"  trackers.ByteTrackTracker         {other[0]:6.3f} ms   ({other[1]} tracks)")
    else:
        print("  trackers.ByteTrackTracker         not installed (pip install trackers)")


if __name__ == "__main__":
    main()
