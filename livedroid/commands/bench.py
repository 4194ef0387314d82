"""``livedroid bench``: where the time goes on this machine (the measurements: livedroid/bench.py)."""

from __future__ import annotations

import argparse

from livedroid.commands.options import add_model_options, add_preset_option, verbose_flag
from livedroid.settings import COUNT, SECONDS_OR_ZERO, option


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    bench = commands.add_parser(
        "bench",
        parents=[verbose_flag()],
        help="measure decode, inference, encode, the loops users write instead, and the pipeline on your machine",
        description=(
            "Measure, in one run on the same clip, frames and model: decode only; inference only on "
            "frames already in memory; annotate+encode only; a naive single-thread loop (read → infer → "
            "draw → write); the OpenCV loop users write (cv2.VideoCapture → interpreter → cv2.rectangle "
            "→ cv2.VideoWriter mp4v); supervision's process_video (when installed); the livedroid "
            "pipeline; with --motion the gated pipeline; and a simulated live camera at the clip's frame "
            "rate (frame age p50/p95/max, dropped frames). Prints a table with each video's size and "
            "the ratios pipeline/each peer and pipeline/limit; the limit is the rate the cores could "
            "reach given each workload's measured CPU cost per frame. Workloads run in --repeat rounds and "
            "each figure is the median of its runs; stderr says what is being measured."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  livedroid bench ../shared/videos/intel_one-by-one-person-detection.mp4 --json bench.json\n",
    )
    bench.add_argument("source", metavar="CLIP", help="a video file")
    add_model_options(bench, labels=False)
    bench.add_argument("--frames", type=option(COUNT), default=300, metavar="N", help="frames of the clip to use (default 300)")
    bench.add_argument("--repeat", type=option(COUNT), default=3, metavar="N", help="runs per measurement; the median is kept (default 3)")
    bench.add_argument("--live-seconds", type=option(SECONDS_OR_ZERO), default=20.0, metavar="S", help="length of the simulated live run; 0 skips it (default 20)")
    bench.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    add_preset_option(bench)
    bench.add_argument("--motion", action="store_true", dest="measure_motion",
                       help="also the pipeline with --motion: frames/s, model runs a frame, detections kept")
    bench.add_argument("--versus", metavar="MODEL",
                       help="also another model's inference and pipeline in the same rounds, with the ratio "
                            "(e.g. the same detector as .onnx against the .tflite)")
    bench.set_defaults(handler=command)
    return bench


def command(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from livedroid.bench import format_table, run_bench, write_json
    from livedroid.engine import EngineSettings
    from livedroid.models import resolve_model

    settings = EngineSettings.from_args(args)
    result = run_bench(
        args.source,
        replace(settings, model=str(resolve_model(settings.model))),
        repeat=args.repeat,
        max_frames=args.frames,
        live_seconds=args.live_seconds,
        preset=args.preset,
        versus=resolve_model(args.versus) if args.versus else None,
        motion=args.measure_motion,
    )
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
    return 0
