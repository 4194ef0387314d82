"""The serve target: four live cameras (the tests' real RTSP server, 640x360 at 15 fps) in one
``livedroid serve``, default model, detect_fps 5 each, with the page's four MJPEG streams open.

Checks, over --minutes: every camera's detections per second (target 5), p95 frame age (target
under 500 ms), and the service's resident memory after warm-up (target flat within ±10 %).
Samples every --every seconds, then prints a summary and whether each target was met.

    nice -n 19 .venv/bin/python benchmarks/serve_four_cameras.py --minutes 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import RtspServer  # noqa: E402 - the real RTSP server of the tests
from tests.service.serving import Served  # noqa: E402

CAMERAS = 4


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def watch_mjpeg(url: str, stop: threading.Event, counts: dict, name: str) -> None:
    """What the open page does: read the camera's MJPEG stream, counting pictures."""
    with urllib.request.urlopen(url, timeout=30) as stream:
        while not stop.is_set():
            chunk = stream.read(65536)
            if not chunk:
                return
            counts[name] = counts.get(name, 0) + chunk.count(b"Content-Type: image/jpeg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=30, help="seconds before the measurement starts")
    parser.add_argument("--every", type=float, default=30, help="seconds between samples")
    parser.add_argument("--detect-fps", type=float, default=5)
    parser.add_argument("--json", help="also write the samples and the summary here")
    args = parser.parse_args()

    servers = [RtspServer("--size", "640x360", "--fps", "15").start() for _ in range(CAMERAS)]
    names = [f"cam{n}" for n in range(1, CAMERAS + 1)]
    stop = threading.Event()
    pictures: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="livedroid-serve-bench-") as folder:
        served = Served(*[s.url() for s in servers], *[a for n in names for a in ("--name", n)],
                        "--http", "127.0.0.1:0", "--detect-fps", str(args.detect_fps), cwd=Path(folder))
        try:
            for name in names:
                threading.Thread(target=watch_mjpeg, args=(f"{served.url}api/cameras/{name}/mjpeg", stop, pictures, name),
                                 daemon=True).start()
            time.sleep(args.warmup)
            start, first = time.monotonic(), served.stats()
            samples = []
            print(f"{'t (s)':>6} {'RSS MiB':>8}  " + "  ".join(f"{n}: det/s p95 ms" for n in names), flush=True)
            while time.monotonic() - start < args.minutes * 60:
                time.sleep(min(args.every, max(0.0, args.minutes * 60 - (time.monotonic() - start))))
                stats, rss = served.stats(), rss_mb(served.process.pid)
                samples.append({"t": round(time.monotonic() - start, 1), "rss_mb": round(rss, 1), "cameras": stats})
                print(f"{samples[-1]['t']:>6} {rss:>8.1f}  " + "  ".join(
                    f"{n}: {stats[n]['detect_fps']:4.2f} {stats[n]['latency_ms']['p95'] or 0:6.0f}" for n in names), flush=True)
            seconds, last = time.monotonic() - start, served.stats()
        finally:
            stop.set()
            served.stop()
            served.kill()
            for server in servers:
                server.stop()
    rates = {n: (last[n]["frames_processed"] - first[n]["frames_processed"]) / seconds for n in names}
    p95_max = max(s["cameras"][n]["latency_ms"]["p95"] or 0 for s in samples for n in names)
    rss = [s["rss_mb"] for s in samples]
    drift = 100 * (max(rss) - min(rss)) / rss[0]
    summary = {
        "minutes": round(seconds / 60, 2),
        "detections_per_s": {n: round(r, 2) for n, r in rates.items()},
        "camera_fps": {n: last[n]["fps"] for n in names},
        "dropped": {n: last[n]["dropped"] for n in names},
        "p95_ms_max": p95_max,
        "rss_mb_first_last_max": (rss[0], rss[-1], max(rss)),
        "rss_spread_pct": round(drift, 1),
        "mjpeg_pictures_received": pictures,
    }
    summary["targets_met"] = {
        f"every camera at {args.detect_fps:g} detections/s (within 5 %)": min(rates.values()) >= 0.95 * args.detect_fps,
        "p95 frame age under 500 ms": p95_max < 500,
        "resident memory flat within ±10 %": drift <= 10,
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps({"samples": samples, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
