"""Many files: `livedroid batch` (local workers, and --ray local) against `livedroid run` on each
file one after the other, side by side in one script so that the ratios are comparable.

Each clip of the folder is used --copies times (symbolic links under other names), so there are
that many more files than clips. Every command runs niced (nice -n 19), as the machine may be
shared; the load average before and after each measurement is printed with it.

    .venv/bin/python benchmarks/batch_vs_run.py ../shared/videos --copies 2 --json batch.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VIDEO = {".mp4", ".avi", ".mkv", ".mov", ".webm"}


def livedroid(*args: str) -> float:
    """Seconds one niced ``livedroid`` command takes; it must succeed."""
    started = time.perf_counter()
    result = subprocess.run(["nice", "-n", "19", sys.executable, "-m", "livedroid", *args, "--no-progress"],
                            capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"livedroid {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return seconds


def run_each(files: list[Path], out: Path) -> float:
    started = time.perf_counter()
    for path in files:
        livedroid("run", str(path), "-o", str(out / f"{path.stem}-detections.mp4"), "--jsonl", str(out / f"{path.stem}.jsonl"))
    return time.perf_counter() - started


def count_frames(out: Path) -> int:
    return sum(path.read_bytes().count(b"\n") for path in out.glob("*.jsonl") if path.name != "manifest.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a folder of clips")
    parser.add_argument("--copies", type=int, default=2, help="times each clip is used (default 2)")
    parser.add_argument("--limit", type=int, help="use only the first N clips")
    parser.add_argument("--modes", default="run,batch,ray", help="which to measure, in this order (default run,batch,ray)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    clips = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in VIDEO)[: args.limit]
    work = Path(tempfile.mkdtemp(prefix="livedroid-batch-bench-"))
    inputs = work / "inputs"
    inputs.mkdir()
    for clip in clips:
        for copy in range(1, args.copies + 1):
            (inputs / f"{clip.stem}-{copy}{clip.suffix}").symlink_to(clip.resolve())
    files = sorted(inputs.iterdir())
    commands = {
        "run": lambda out: run_each(files, out),
        "batch": lambda out: livedroid("batch", str(inputs), "--out", str(out)),
        "ray": lambda out: livedroid("batch", str(inputs), "--out", str(out), "--ray", "local"),
    }
    results = {"files": len(files), "clips": [c.name for c in clips], "cores": os.cpu_count(), "modes": {}}
    print(f"{len(files)} files ({len(clips)} clips x {args.copies}), {os.cpu_count()} cores, all niced")
    for mode in args.modes.split(","):
        out = work / mode
        out.mkdir()
        load_before = os.getloadavg()[0]
        seconds = commands[mode](out)
        frames = count_frames(out)
        results["modes"][mode] = {"seconds": seconds, "frames": frames, "fps": frames / seconds,
                                  "load_before": load_before, "load_after": os.getloadavg()[0]}
        print(f"{mode:6s} {seconds:7.1f} s  {frames} frames  {frames / seconds:6.1f} fps  "
              f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)", flush=True)
    if "run" in results["modes"]:
        for mode in results["modes"]:
            results["modes"][mode]["speed_vs_run"] = results["modes"]["run"]["seconds"] / results["modes"][mode]["seconds"]
        print("vs run one after the other: " + ", ".join(
            f"{mode} {entry['speed_vs_run']:.2f}x" for mode, entry in results["modes"].items() if mode != "run"))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
