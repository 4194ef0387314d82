"""Retention by size under load: --cameras looping clips of noise (they compress badly: about
0.4 MB a second each) recorded by one ``livedroid serve`` in 10 s segments into one folder capped
far below what they write (``recordings_max_gb``).

Samples every --every seconds: the folder's bytes on disk (closed segments, the ones in flight, the
index), the segments kept, the oldest one kept, the service's resident memory. Checks: usage stays
under the cap, the segments in flight and the index included, the oldest kept only moves forward (the
oldest go first), memory after warm-up stays flat (within ±10 %). Prints a table, writes --json.

    nice -n 19 .venv/bin/python benchmarks/serve_retention.py --minutes 30 --json benchmarks/results/serve_retention.json
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.serve_four_cameras import rss_mb  # noqa: E402
from tests.conftest import write_clip  # noqa: E402 - the tests' clips
from tests.service.serving import Served  # noqa: E402


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--cap-mb", type=float, default=40, help="the folder's recordings_max_gb, in MB")
    parser.add_argument("--segment-seconds", type=float, default=10)
    parser.add_argument("--every", type=float, default=5, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=30, help="seconds before memory is compared")
    parser.add_argument("--json", help="also write the samples and the summary here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="livedroid-retention-") as work:
        work = Path(work)
        rng = np.random.default_rng(7)
        write_clip(work / "noise.mp4", frames=30, size=(320, 240), fps=15, audio=None,
                   draw=lambda _: rng.integers(0, 256, (240, 320, 3), np.uint8))
        cameras = "".join(f"  - {{name: cam{n}, source: noise.mp4}}\n" for n in range(1, args.cameras + 1))
        (work / "cameras.yaml").write_text(
            f"defaults: {{loop: true, record: true, detect_fps: 5, segment_seconds: {args.segment_seconds},"
            f" recordings_max_gb: {args.cap_mb / 1000}}}\ncameras:\n{cameras}")
        served = Served("--config", "cameras.yaml", "--http", "127.0.0.1:0", cwd=work)
        samples, began = [], time.monotonic()
        try:
            while time.monotonic() - began < args.minutes * 60:
                time.sleep(args.every)
                stats = served.stats()
                kept = [s["oldest_kept"] for s in stats.values() if s["oldest_kept"]]
                samples.append({
                    "t_s": round(time.monotonic() - began, 1),
                    "usage_mb": round(folder_bytes(work / "recordings") / 1e6, 2),
                    "segments": sum(s["segments_kept"] or 0 for s in stats.values()),
                    "written": sum(s["segments_recorded"] for s in stats.values()),
                    "deleted": sum(s["segments_deleted"] for s in stats.values()),
                    "oldest_kept": min(kept) if kept else None,
                    "rss_mb": round(rss_mb(served.process.pid), 1),
                    "failures": sum(s["recording_failures"] for s in stats.values()),
                })
                print(" ".join(f"{key}={value}" for key, value in samples[-1].items()), flush=True)
            served.stop(signal.SIGTERM)
        finally:
            served.kill()

    bound = args.cap_mb  # on disk: closed segments, those in flight and the index together
    oldest = [s["oldest_kept"] for s in samples if s["oldest_kept"]]
    warm = [s["rss_mb"] for s in samples if s["t_s"] >= args.warmup]
    summary = {
        "cameras": args.cameras, "minutes": args.minutes, "cap_mb": args.cap_mb,
        "written_segments": samples[-1]["written"], "deleted_segments": samples[-1]["deleted"],
        "max_usage_mb": max(s["usage_mb"] for s in samples), "usage_bound_mb": bound,
        "rss_first_mb": warm[0] if warm else None, "rss_last_mb": warm[-1] if warm else None,
        "rss_max_mb": max(warm) if warm else None,
        "under_cap": max(s["usage_mb"] for s in samples) <= bound,
        "oldest_first": all(a <= b for a, b in zip(oldest, oldest[1:])),
        "memory_flat": bool(warm) and max(warm) <= 1.1 * warm[0] and min(warm) >= 0.9 * warm[0],
        "no_failures": samples[-1]["failures"] == 0,
    }
    print(f"\n{'figure':<22}{'value':>12}")
    for key, value in summary.items():
        print(f"{key:<22}{value!s:>12}")
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "samples": samples}, indent=1))


if __name__ == "__main__":
    main()
