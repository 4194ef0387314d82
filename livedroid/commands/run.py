"""``livedroid run``: one source through the engine into an annotated video, images, JSON Lines
or a window, with the run's closing lines and exit status."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from livedroid.commands import EXAMPLES
from livedroid.commands.options import (
    add_detection_options, add_encoder_options, add_region_options, add_stream_options, add_tracking_options,
    verbose_flag,
)
from livedroid.errors import UserError
from livedroid.privacy import add_privacy_options
from livedroid.settings import COUNT_OR_ZERO, option
from livedroid.signals import StopOnSignals
from livedroid.wording import plural

log = logging.getLogger("livedroid")

RUN_EXIT_STATUS = """
exit status: 0 done, 1 internal error, 2 a mistake in the command or a full disk (one line says
which), 3 the input is damaged or held no frame (the outputs keep what was read), 130 Ctrl-C/SIGTERM
"""


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    run = commands.add_parser(
        "run",
        parents=[verbose_flag()],
        help="detect objects in a video, stream, camera or images",
        description=(
            "Stream SOURCE through a detector and write the results. Files are processed frame by "
            "frame (nothing dropped); cameras and streams always process the newest frame, so "
            "latency stays bounded. Ctrl-C finishes the frames in flight and closes the outputs."
        ),
        epilog=EXAMPLES + RUN_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "source",
        metavar="SOURCE",
        nargs="+",
        help="video file, image(s), folder or glob of images, camera index (0) or /dev/videoN, or rtsp:// http:// URL",
    )
    add_detection_options(run)
    add_region_options(run)
    out = run.add_argument_group(
        "outputs (files and images always get an annotated copy unless --no-video: by default "
        "NAME-detections.mp4, NAME-detections.jpg or NAME-detections/ in the current folder)"
    )
    out.add_argument("-o", "--output", metavar="PATH",
                     help="annotated video (.mp4 .mkv .mov .webm .avi), an image file for one image, or a folder for images")
    out.add_argument("--jsonl", metavar="PATH", help="detections as JSON Lines, one record per frame (besides the video)")
    out.add_argument("--no-video", action="store_true", help="no annotated video or images (with --jsonl or --show)")
    out.add_argument("--show", action="store_true", help="preview window with live fps (q quits)")
    out.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_encoder_options(out)
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--max-frames", type=option(COUNT_OR_ZERO), metavar="N", help="stop after reading N frames (a trial run, or a bounded recording)")
    add_tracking_options(run)
    add_privacy_options(run)
    add_stream_options(run, after_reconnect="the run ends")
    run.set_defaults(handler=command)
    return run


def command(args: argparse.Namespace) -> int:
    # Imported here so that `livedroid --help` and the training commands start fast.
    from livedroid.detectors import load_detectors
    from livedroid.engine import EngineSettings, build_engine
    from livedroid.models import resolve_model
    from livedroid.sources import ImageSource, open_source

    settings = EngineSettings.from_args(args)  # bad zones, lines and combinations fail before anything loads
    _refuse_shared_outputs(args, args.output)
    model_path = resolve_model(settings.model)
    detectors = load_detectors(model_path, settings.backend, workers=1 if settings.motion else settings.workers,
                               threads=settings.threads, batch=settings.batch, labels=settings.labels,
                               device=settings.device)
    engine = build_engine(settings, detectors)
    detector = engine.detectors[0]
    source = open_source(
        args.source,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
        reconnect_timeout=args.reconnect_timeout,
    )
    pipeline = None
    try:
        sinks = make_sinks(args, source, is_images=isinstance(source, ImageSource))
        log.info("model %s (%s: %s, batch %d, %s)", model_path, detector.backend, detector.runtime,
                 min(args.batch, detector.max_batch), plural(len(engine.detectors), "inference worker"))
        log.info("source %s%s", source.description, _describe(source))
        pipeline = engine.pipeline(source, sinks, batch=args.batch, progress=not args.no_progress,
                                   max_frames=args.max_frames)
        with StopOnSignals(pipeline.stop, pipeline.cancel):
            summary = pipeline.run()
    finally:
        if pipeline is None or not pipeline.reading:  # never close it under the reader's feet
            source.close()
    return _report_run(args, summary, source, engine.detectors, engine.stages, sinks)


def _report_run(args: argparse.Namespace, summary, source, detectors: list, stages: list, sinks: list) -> int:
    """The run's closing lines (summary, each stage's, each output written) and its exit status:
    130 interrupted, ``EXIT_DAMAGED`` for a damaged or empty input, else 0."""
    print(f"livedroid: {summary.line()}", file=sys.stderr)
    if (args.tiles or args.motion) and summary.frames_processed:
        calls = sum(detector.calls for detector in detectors)
        print(f"livedroid: {'tiles' if args.tiles else 'motion'}: {calls / summary.frames_processed:.2f} "
              "model runs a frame", file=sys.stderr)
    for stage in stages:
        for line in stage.summary():
            print(f"livedroid: {line}", file=sys.stderr)
    for sink in sinks:
        if sink.path and sink.path.exists():
            print(f"livedroid: wrote {sink.path}", file=sys.stderr)
    if summary.interrupted:
        return 130
    damage = getattr(source, "damage", None)
    if damage:
        print(f"livedroid: error: {source.description} is damaged, {damage}; the outputs hold what was read",
              file=sys.stderr)
        return EXIT_DAMAGED
    if summary.frames_read == 0 and args.max_frames != 0:
        print(f"livedroid: error: {source.description}: no frame could be read", file=sys.stderr)
        return EXIT_DAMAGED
    return 0


#: Exit status of a run whose input was damaged or empty: its outputs hold what could be read.
EXIT_DAMAGED = 3


def make_sinks(args: argparse.Namespace, source, is_images: bool) -> list:
    """The outputs asked for. A file or images always get an annotated copy unless ``--no-video``
    (``--jsonl`` and ``--show`` add to it); a live source writes only what is named."""
    from livedroid.sinks import ImageFileSink, ImageFolderSink, JsonLinesSink, VideoSink, WindowSink
    from livedroid.sources.images import IMAGE_SUFFIXES

    inputs = tuple(args.source)
    output = args.output
    if output and args.no_video:
        raise UserError("--output and --no-video contradict each other: keep one")
    if output is None and not args.no_video and not source.live:
        output = _default_output(args.source, is_images, source.frame_count)
    _refuse_shared_outputs(args, output)
    if not (output or args.jsonl or args.show):
        what = "a live source" if source.live else "--no-video"
        raise UserError(f"{what} needs somewhere to go: --output FILE, --jsonl FILE or --show")
    sinks = []
    single_image = is_images and Path(output or "").suffix.lower() in IMAGE_SUFFIXES
    if single_image and source.frame_count != 1:
        raise UserError(f"--output {output} names one image, but there are {source.frame_count} images: give a folder")
    if single_image:
        sinks.append(ImageFileSink(output, overwrite=args.overwrite, inputs=inputs))
    elif output and is_images:
        sinks.append(ImageFolderSink(output, overwrite=args.overwrite))
    elif output:
        sinks.append(VideoSink.for_source(output, source, crf=args.crf, preset=args.preset, overwrite=args.overwrite, inputs=inputs))
    if args.jsonl:
        sinks.append(JsonLinesSink(args.jsonl, overwrite=args.overwrite, inputs=inputs))
    if args.show:
        sinks.append(WindowSink())
    return sinks


def _refuse_shared_outputs(args: argparse.Namespace, output: str | None) -> None:
    """Two outputs on one path would mix into one file, found out only at the end: refuse it at once."""
    named = {"--output": output, "--jsonl": args.jsonl, "--events": args.events, "--snapshots": args.snapshots}
    seen: dict[Path, str] = {}
    for flag, path in named.items():
        if path is None:
            continue
        resolved = Path(path).expanduser().resolve()
        if resolved in seen:
            raise UserError(f"{seen[resolved]} and {flag} both write {path}: give each output its own path")
        seen[resolved] = flag


def _default_output(sources: list[str], is_images: bool, count: int | None) -> str:
    """``clip-detections.mp4``, ``photo-detections.jpg`` (one image), ``photos-detections/``."""
    if len(sources) > 1:
        return "images-detections"
    path = Path(sources[0].rstrip("/*"))
    stem = path.stem or "images"
    if not is_images:
        return f"{stem}-detections.mp4"
    return f"{stem}-detections{path.suffix}" if count == 1 and path.is_file() else f"{stem}-detections"


def _describe(source) -> str:
    parts = [f"{source.fps:.2f} fps" if source.fps else None,
             plural(source.frame_count, "frame") if source.frame_count else None,
             "live" if source.live else None]
    parts = [p for p in parts if p]
    return f" ({', '.join(parts)})" if parts else ""
