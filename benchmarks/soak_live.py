"""Soak test of a long live run: does memory stay flat and do the queues stay bounded?

A synthetic live camera (a real clip decoded once, replayed at 30 fps, frames stamped with their
capture time) runs through the full pipeline — default model, annotated H.264 video and JSON
Lines — for --minutes. Resident memory, buffer depths and frame ages are sampled every --every
seconds and printed; the run ends with the start/end memory and the dropped-frame count.

    .venv/bin/python benchmarks/soak_live.py ../shared/videos/moviepy_chaplin.mp4 --minutes 30
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from pathlib import Path

from livedroid.detectors import load_detector
from livedroid.models import resolve_model
from livedroid.pipeline import Pipeline
from livedroid.sinks import JsonLinesSink, VideoSink
from livedroid.sources import MemorySource, VideoSource


def rss_mb() -> float:
    """Current resident set size in MiB (from /proc; ru_maxrss is only the peak)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip")
    parser.add_argument("--model", default=None)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--every", type=float, default=60, help="seconds between samples")
    parser.add_argument("--frames", type=int, default=150, help="clip frames held in memory and looped")
    args = parser.parse_args()

    clip = VideoSource(args.clip, max_frames=args.frames)
    images = [frame.image for frame in clip.frames()]
    clip.close()
    detector = load_detector(resolve_model(args.model))
    source = MemorySource(images, args.fps, live=True, seconds=args.minutes * 60)
    with tempfile.TemporaryDirectory(prefix="livedroid-soak-") as folder:
        sinks = [VideoSink(Path(folder) / "soak.mp4", fps=args.fps, time_base=source.time_base, crf=30),
                 JsonLinesSink(Path(folder) / "soak.jsonl")]
        pipeline = Pipeline(source, detector, sinks, progress=False)
        start_rss = rss_mb()
        print(f"start: RSS {start_rss:.0f} MiB, {len(images)} frames of {images[0].shape[1]}x{images[0].shape[0]} "
              f"looped at {args.fps:g} fps for {args.minutes:g} min", flush=True)
        done = threading.Event()

        def sample() -> None:
            began = time.monotonic()
            while not done.wait(args.every):
                ages = sorted(list(pipeline.ages)[-300:]) or [0.0]
                backlog = pipeline.backlog
                print(f"{(time.monotonic() - began) / 60:5.1f} min: RSS {rss_mb():.0f} MiB, "
                      f"input buffer {backlog['frames_waiting']}/{backlog['frames_waiting_max']}, "
                      f"results queue {backlog['results_waiting']}/{backlog['results_waiting_max']}, "
                      f"dropped {backlog['dropped']}, recent frame age p50 {1000 * ages[len(ages) // 2]:.0f} ms",
                      flush=True)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        summary = pipeline.run()
        done.set()
        print(f"end: RSS {rss_mb():.0f} MiB (start {start_rss:.0f} MiB)")
        print(summary.line())


if __name__ == "__main__":
    main()
