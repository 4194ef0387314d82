"""The ``livedroid`` command line: ``run`` plays a source through a detector; ``train`` and
``import-zoo`` hand over to the training package (the ``train`` extra)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from livedroid import __version__
from livedroid.detectors import BACKENDS, DEVICES
from livedroid.errors import UserError, interrupted
from livedroid.privacy import add_privacy_options
from livedroid.settings import (
    COUNT, COUNT_OR_ZERO, CRF, DEFAULT_CRF, DEFAULT_DETECT_EVERY, DEFAULT_FULL_EVERY, DEFAULT_MAX_DETECTIONS,
    DEFAULT_TRACK_BUFFER, GPUS, RATE, SECONDS, SECONDS_OR_ZERO, TILE_SIZE, Parser, add_threshold_option, option,
)
from livedroid.signals import StopOnSignals
from livedroid.wording import plural

log = logging.getLogger("livedroid")

EXAMPLES = """\
examples:
  livedroid run clip.mp4                       annotate a clip with the default COCO model
  livedroid run clip.mp4 -m star-wars --classes R2-D2,BB-8 --jsonl droids.jsonl
  livedroid run 0 --show                       webcam 0 in a window (q quits)
  livedroid run rtsp://user:pass@cam/stream --output cam.mp4 --jsonl cam.jsonl
  livedroid run photos/ -o annotated/          a folder of images
  livedroid run door.mp4 --line gate=0,0.6,1,0.6 --zone desk=0.1,0.1,0.5,0.1,0.5,0.5:person --events ev.jsonl
                                               track, count crossings and desk visits, log each event
  livedroid batch archive/ --out annotated/    every video of a folder, resumable (--ray for a cluster)
  livedroid mine clip.mp4 -m droids --out mined/  the frames worth labelling, pre-annotated
  livedroid review mined/                      fix them in the browser; then: livedroid train photos/ mined/ --out ...
  livedroid eval droids test-photos/           mAP, confusions and mistakes of any model on annotated photos
"""

# Commands served by the training package, which needs TensorFlow (pip install 'livedroid[train]').
TRAINING_COMMANDS = {
    "train": ("livedroid.training.cli", "fine-tune a detector on your labelImg folder (prepare, fit, eval, export)"),
    "eval": ("livedroid.training.eval_cli", "COCO mAP, confusions and mistakes of any model on annotated photos"),
    "import-zoo": ("livedroid.training.zoo_import", "convert a TF1 Detection Zoo frozen graph to TFLite"),
    "import-zoo-checkpoint": (
        "livedroid.training.zoo_checkpoint",
        "convert a TF1 Detection Zoo SSD MobileNetV2 frozen graph to a TF2 checkpoint to fine-tune from",
    ),
}


def _verbose_flag() -> argparse.ArgumentParser:
    """``-v`` is accepted before or after the command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log debugging details")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="livedroid",
        description="Real-time object detection in video with detectors you trained yourself.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_verbose_flag()],
    )
    parser.add_argument("--version", action="version", version=f"livedroid {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_run_parser(commands)
    add_batch_parser(commands)
    add_bench_parser(commands)
    add_serve_parser(commands)
    add_mine_parser(commands)
    add_review_parser(commands)
    for name, (_, summary) in TRAINING_COMMANDS.items():
        commands.add_parser(name, help=summary, add_help=False)
    return parser


RUN_WORKERS = "interpreters running in parallel (default: 2 for TFLite on 2+ cores, else 1)"


def _add_model_options(parser: argparse.ArgumentParser, workers_help: str = RUN_WORKERS,
                       model_default: str | None = None) -> argparse._ArgumentGroup:
    """The model and how it runs: the same options for ``run`` and ``bench``."""
    model = parser.add_argument_group("model")
    model.add_argument(
        "-m", "--model", metavar="MODEL", default=model_default,
        help="a .tflite file, a SavedModel folder, or a model name under models/ (default: coco-ssd-mobilenet-v2)",
    )
    model.add_argument("--backend", choices=sorted(BACKENDS), help="default: from the model's form (.tflite, .onnx, SavedModel folder)")
    model.add_argument("--device", choices=DEVICES, metavar="D",
                       help=f"where an ONNX model runs: {', '.join(DEVICES)} (default auto: the best provider installed)")
    model.add_argument("--threads", type=option(COUNT), metavar="N", help="threads per interpreter (default: the cores shared among the workers)")
    model.add_argument("--batch", type=option(COUNT), default=1, metavar="N", help="frames per inference call when the model allows it (default 1)")
    model.add_argument("--workers", type=option(COUNT), metavar="N", help=workers_help)
    return model


def _add_detection_options(parser: argparse.ArgumentParser, workers_help: str = RUN_WORKERS) -> None:
    """The model, its labels and which detections are kept: the same for ``run`` and ``batch``."""
    model = _add_model_options(parser, workers_help)
    model.add_argument("--labels", metavar="FILE", help="label_map.pbtxt or labelmap.txt (default: packed in the model or beside it)")
    select = parser.add_argument_group("which detections")
    add_threshold_option(select)
    select.add_argument("--classes", metavar="A,B", help="keep only these label names, comma-separated")
    select.add_argument("--max-detections", type=option(COUNT), default=DEFAULT_MAX_DETECTIONS, metavar="N",
                        help=f"per frame (default {DEFAULT_MAX_DETECTIONS})")


def _add_encoder_options(out: argparse._ArgumentGroup) -> None:
    out.add_argument("--crf", type=option(CRF), default=DEFAULT_CRF, help=f"H.264 quality, lower is better (default {DEFAULT_CRF})")
    _add_preset_option(out)


def add_run_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    run = commands.add_parser(
        "run",
        parents=[_verbose_flag()],
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
    _add_detection_options(run)
    regions = run.add_argument_group("which parts of each frame to infer (default: the whole frame)")
    regions.add_argument("--tiles", action="store_true",
                       help="for 720p-4K frames with small objects: also infer overlapping tiles, merged per class "
                            "(13 model runs a 1080p frame with the default model and tile size)")
    regions.add_argument("--tile-size", type=option(TILE_SIZE), metavar="PX",
                       help="tile side with --tiles: objects must fit in a tile, smaller tiles find smaller objects "
                            "and cost more (default: twice the model's input, 600 for the default model)")
    regions.add_argument("--motion", action="store_true",
                       help="infer only where something moved: moving objects every --detect-every frames, carried "
                            "by a motion model in between; new motion at once; a full pass every --full-every frames, "
                            "after a light change and while the camera moves (fixed cameras; one inference worker)")
    regions.add_argument("--full-every", type=option(COUNT), default=DEFAULT_FULL_EVERY, metavar="N",
                       help=f"with --motion: a full-frame pass every N frames, which also checks still objects (default {DEFAULT_FULL_EVERY})")
    regions.add_argument("--detect-every", type=option(COUNT), default=DEFAULT_DETECT_EVERY, metavar="N",
                       help=f"with --motion: moving objects inferred every N frames (default {DEFAULT_DETECT_EVERY}; 1 infers them every frame)")
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
    _add_encoder_options(out)
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--max-frames", type=option(COUNT_OR_ZERO), metavar="N", help="stop after reading N frames (a trial run, or a bounded recording)")
    _add_tracking_options(run)
    add_privacy_options(run)
    _add_stream_options(run, after_reconnect="the run ends")
    run.set_defaults(handler=command_run)
    return run


def _add_stream_options(parser: argparse.ArgumentParser, after_reconnect: str) -> None:
    live = parser.add_argument_group("streams")
    live.add_argument("--connect-timeout", type=option(SECONDS), default=10.0, metavar="S", help="seconds to keep trying to open a stream at start (default 10)")
    live.add_argument("--reconnect-timeout", type=option(SECONDS), default=60.0, metavar="S",
                      help=f"seconds to keep reconnecting after a stream drops, then {after_reconnect} (default 60)")
    live.add_argument("--read-timeout", type=option(SECONDS), default=10.0, metavar="S", help="seconds without data before a stream counts as lost (default 10)")


def _add_tracking_options(run: argparse.ArgumentParser) -> None:
    tracking = run.add_argument_group(
        "tracking, zones and events",
        "Coordinates are pixels, or fractions of the frame when all lie within 0-1. A track's position is "
        "the bottom centre of its box. A line counts 'in' when crossed from its left to its right, looking "
        "from its first point to its second (drawn left to right: moving down is 'in').",
    )
    tracking.add_argument("--track", action="store_true", help="persistent ids (ByteTrack): 'person #3' on the video, \"track_id\" in --jsonl; only tracked objects are kept")
    tracking.add_argument("--track-buffer", type=option(COUNT_OR_ZERO), default=DEFAULT_TRACK_BUFFER, metavar="FRAMES",
                          help=f"frames a lost track is kept for its return (default {DEFAULT_TRACK_BUFFER})")
    tracking.add_argument("--zone", action="append", default=[], metavar="NAME=X,Y,X,Y,X,Y[:CLASS,..]", help="a polygon zone counting enters and exits (repeatable; implies --track)")
    tracking.add_argument("--line", action="append", default=[], metavar="NAME=X1,Y1,X2,Y2[:CLASS,..]", help="a line counting crossings in and out (repeatable; implies --track)")
    tracking.add_argument("--analytics", metavar="FILE", help="zones and lines from a YAML or JSON file (see README)")
    tracking.add_argument("--events", metavar="FILE", help="enter, exit and crossing events as JSON Lines, each written as it happens")
    tracking.add_argument("--snapshots", metavar="DIR", help="the best crop of each track as DIR/track-0001-LABEL.jpg (implies --track)")


RUN_EXIT_STATUS = """
exit status: 0 done, 1 internal error, 2 a mistake in the command or a full disk (one line says
which), 3 the input is damaged or held no frame (the outputs keep what was read), 130 Ctrl-C/SIGTERM
"""

BATCH_EXAMPLES = """\
examples:
  livedroid batch recordings/ --out annotated/            every video under recordings/, on all cores
  livedroid batch 'season/*.mp4' --out out/ --no-video    detections only (out/NAME.jsonl)
  livedroid batch /shared/archive --out /shared/out --ray auto   on the Ray cluster this node belongs to

A rerun with the same --out skips the files already complete (checked against DIR/manifest.jsonl:
sizes and frame counts) and redoes the rest, damaged files (incomplete) included. Exit status: 0 all
complete, 1 some file failed or was damaged (see the manifest), 2 a usage error or a full disk
(one line says which), 130 stopped by Ctrl-C or SIGTERM.
"""


def add_batch_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    batch = commands.add_parser(
        "batch",
        parents=[_verbose_flag()],
        help="annotate many video files: resumable, on all cores or on a Ray cluster",
        description=(
            "Annotate every INPUT (video files, folders searched recursively, globs) into "
            "DIR/NAME-detections.mp4 (H.264, the input's timestamps and audio) and DIR/NAME.jsonl, "
            "as `run` does for one file. Files run in parallel worker processes, or as Ray tasks with "
            "--ray. A file that fails is recorded and the others go on. Ctrl-C stops the files in "
            "flight (left as .partial, redone next time); finished files stay complete."
        ),
        epilog=BATCH_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("inputs", nargs="+", metavar="INPUT", help="video file, folder or glob (quote globs)")
    batch.add_argument("--out", required=True, metavar="DIR", help="output folder; also holds manifest.jsonl")
    _add_detection_options(
        batch, "worker processes, one file and one interpreter each (default: one per core for TFLite, else 1)"
    )
    add_privacy_options(batch)
    out = batch.add_argument_group("outputs")
    out.add_argument("--no-video", action="store_true", help="detections only: no annotated videos")
    out.add_argument("--overwrite", action="store_true", help="redo every file, even those already complete")
    _add_encoder_options(out)
    out.add_argument("--no-progress", action="store_true", help="no progress bars")
    cluster = batch.add_argument_group("Ray (pip install 'livedroid[ray]')")
    cluster.add_argument(
        "--ray", metavar="ADDRESS",
        help="run one Ray task per file: 'auto' (the cluster of this node), 'local' (start Ray here), "
        "or HOST:PORT / ray://HOST:10001. Inputs, model and --out must be on storage every node shares",
    )
    cluster.add_argument("--retries", type=option(COUNT_OR_ZERO), default=3, metavar="N", help="times a file is retried when its Ray worker dies (default 3)")
    cluster.add_argument("--gpus-per-file", type=option(GPUS), metavar="G", help="GPUs each Ray task asks for (default: 1 for SavedModels when the cluster has GPUs, else 0)")
    batch.set_defaults(handler=command_batch)
    return batch


def command_batch(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from livedroid.batch import BatchSettings, FolderLock, LocalPool, RayCluster, find_jobs, plan_workers, run_batch
    from livedroid.detectors import backend_for, load_detector
    from livedroid.engine import EngineSettings
    from livedroid.models import resolve_model

    engine = EngineSettings.from_args(args)
    model_path = resolve_model(engine.model).resolve()
    backend = engine.backend or backend_for(model_path)
    if backend == "tflite" or engine.classes or engine.privacy.classes:  # check the model and class names once, before any file starts
        engine.check_labels(load_detector(model_path, engine.backend, device=engine.device, labels=engine.labels, threads=1).labels)
    jobs = find_jobs(args.inputs, Path(args.out), video=not args.no_video)
    workers, threads = plan_workers(backend, args.workers, args.threads, len(jobs))
    engine = replace(
        engine,
        model=str(model_path),
        labels=os.path.abspath(engine.labels) if engine.labels else None,
        threads=(args.threads or 1) if args.ray and backend == "tflite" else threads,
        workers=None,  # worker processes, not interpreters: the batch's own
        inputs=(),
    )
    settings = BatchSettings(engine, crf=args.crf, preset=args.preset, video=not args.no_video)
    if args.ray:
        executor = RayCluster(args.ray, settings, retries=max(0, args.retries), gpus=args.gpus_per_file)
    else:
        executor = LocalPool(settings, workers)
    log.info("%d files, model %s, %s", len(jobs), model_path, executor.description)
    with FolderLock(Path(args.out)):
        summary = run_batch(jobs, settings, executor, Path(args.out) / "manifest.jsonl", redo=args.overwrite,
                            progress=not args.no_progress)
    print(f"livedroid: {summary.line()}", file=sys.stderr)
    print(f"livedroid: outcomes in {Path(args.out) / 'manifest.jsonl'}", file=sys.stderr)
    return summary.exit_status


def _add_preset_option(group: argparse._ArgumentGroup) -> None:
    from livedroid.codecs import DEFAULT_PRESET, X264_PRESETS

    group.add_argument("--preset", default=DEFAULT_PRESET, choices=X264_PRESETS, metavar="NAME",
                       help=f"x264 speed preset: faster ones cost less CPU and write larger files "
                            f"(default {DEFAULT_PRESET}; {', '.join(X264_PRESETS[:4])} …)")


def add_bench_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    bench = commands.add_parser(
        "bench",
        parents=[_verbose_flag()],
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
    _add_model_options(bench)
    bench.add_argument("--frames", type=option(COUNT), default=300, metavar="N", help="frames of the clip to use (default 300)")
    bench.add_argument("--repeat", type=option(COUNT), default=3, metavar="N", help="runs per measurement; the median is kept (default 3)")
    bench.add_argument("--live-seconds", type=option(SECONDS_OR_ZERO), default=20.0, metavar="S", help="length of the simulated live run; 0 skips it (default 20)")
    bench.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    _add_preset_option(bench)
    bench.add_argument("--motion", action="store_true", dest="measure_motion",
                       help="also the pipeline with --motion: frames/s, model runs a frame, detections kept")
    bench.add_argument("--versus", metavar="MODEL",
                       help="also another model's inference and pipeline in the same rounds, with the ratio "
                            "(e.g. the same detector as .onnx against the .tflite)")
    bench.set_defaults(handler=command_bench)
    return bench


SERVE_EXAMPLES = """\
examples:
  livedroid serve rtsp://cam1/stream rtsp://cam2/stream --name door --name yard
                                   two cameras; open http://127.0.0.1:8080/ to watch them
  livedroid serve demo.mp4 --loop  a file played as a camera, over and over
  livedroid serve --config cameras.yaml --mqtt 127.0.0.1:1883
                                   per-camera settings (see README), events to MQTT
  livedroid serve --config cameras.yaml --http 0.0.0.0:8080 --token s3cret
                                   reachable from other machines: a token is required
"""


def add_serve_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    serve = commands.add_parser(
        "serve",
        parents=[_verbose_flag()],
        help="run many cameras in one process with a live web page, metrics and MQTT events",
        description=(
            "Watch several cameras at once. All cameras share one set of detector workers, served in "
            "turn so that none starves, each at most at its detect fps. A camera that drops is "
            "reconnected; one that fails never stops the others. The web page shows each camera live "
            "with its figures; /api/stats, /metrics (Prometheus), /api/events and "
            "/api/cameras/NAME/latest.jpg or /mjpeg serve programs. Ctrl-C stops it."
        ),
        epilog=SERVE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("source", metavar="SOURCE", nargs="*",
                       help="camera: rtsp:// http:// URL, camera index or /dev/videoN, or a video file with --loop")
    serve.add_argument("--name", action="append", default=argparse.SUPPRESS, metavar="NAME", help="a name per SOURCE, in order (default camera1, camera2, …)")
    serve.add_argument("--config", metavar="FILE", help="cameras and their settings from a YAML file (see README)")
    serve.add_argument("--loop", action="store_true", default=argparse.SUPPRESS, help="play video files as cameras, from the start again at their end")
    model = _add_model_options(serve, model_default=argparse.SUPPRESS)
    for action in model._group_actions:
        if action.dest == "batch":  # cameras share calls: several cameras' frames in one
            action.default, action.help = 4, "most frames (of several cameras) per inference call when the model allows it (default 4)"
    add_threshold_option(model, default=argparse.SUPPRESS)
    model.add_argument("--classes", default=argparse.SUPPRESS, metavar="A,B", help="keep only these label names, comma-separated")
    model.add_argument("--detect-fps", type=option(RATE), default=argparse.SUPPRESS, metavar="F", help="most frames inferred per second and camera (default 5)")
    model.add_argument("--motion", action="store_true", default=argparse.SUPPRESS,
                       help="infer only where something moved, on the frames --detect-fps passes on: still "
                            "frames cost nothing, still objects are checked every 20 frames (as run --motion)")
    web = serve.add_argument_group("web and MQTT")
    web.add_argument("--http", metavar="HOST:PORT", help="where the page and API listen (default 127.0.0.1:8080; port 0: any free one)")
    web.add_argument("--token", help="required of every request (Authorization: Bearer T or ?token=T); needed beyond localhost")
    web.add_argument("--mqtt", metavar="HOST[:PORT]", help="publish events to livedroid/NAME/events, availability to livedroid/available")
    web.add_argument("--mqtt-queue", type=option(COUNT), default=1000, metavar="N", help="events kept while the broker is away; more are dropped (default 1000)")
    _add_stream_options(serve, after_reconnect="the camera starts again (it never stops the others)")
    serve.set_defaults(handler=command_serve)
    return serve


#: serve's per-camera options (destination: option): with --config they belong in the file. They
#: default to argparse.SUPPRESS, absent unless typed, so that one typed at its default is seen too.
SERVE_PER_CAMERA = {"name": "--name", "model": "--model", "threshold": "--threshold", "classes": "--classes",
                    "detect_fps": "--detect-fps", "motion": "--motion", "loop": "--loop"}


def command_serve(args: argparse.Namespace) -> int:
    from livedroid.service.command import serve

    return serve(args)


def command_bench(args: argparse.Namespace) -> int:
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


MINE_EXAMPLES = """\
examples:
  livedroid mine ../shared/videos/intel_one-by-one-person-detection.mp4 --out mined/intel --classes person
                                        50 frames of a clip worth labelling, people pre-annotated
  livedroid mine photos/ -m star-wars --out mined/droids --count 20
  livedroid mine new-photos/ -m star-wars --out labelled/new --all     label assist: every photo
  livedroid mine rtsp://cam/stream --out mined/door --max-frames 3000         a live camera, bounded

then:  livedroid review mined/intel        correct the boxes in the browser
       livedroid train photos/ mined/intel --out models/NAME     retrain on both

What makes a frame worth a label: a box scored near the threshold, boxes that flicker or change
class between frames, boxes the mirrored frame (or, with --tiles, the tiles) does not confirm, and
novelty: unlike every frame picked so far (and, with --known, unlike your training photos). Picks are at least --min-gap seconds apart and never
the same scene (the same view with the same boxes), the folder's earlier picks included. Without
--classes the label map is the folder's, all the classes of a small model, or the classes a large
one (COCO) sees in at least 3 frames and 1% of them; the review page adds more. DIR gets images/, labelImg XML in annotations/ (the model's boxes at -t),
label_map.pbtxt, coco.json, mined.jsonl (each pick's source, frame and reasons) and
contact_sheet.jpg. A rerun into the same DIR adds new picks.
"""


def add_mine_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    mine = commands.add_parser(
        "mine",
        parents=[_verbose_flag()],
        help="pick the frames worth labelling from your footage, pre-annotated for review and training",
        description=(
            "Play SOURCE(s) through a detector and pick the frames that would teach it most, written as "
            "a dataset 'livedroid train' reads as it is, with the model's boxes as pre-annotations."
        ),
        epilog=MINE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mine.add_argument("source", metavar="SOURCE", nargs="+",
                      help="video files, image folders or globs, a camera index or rtsp:// http:// URL")
    mine.add_argument("--out", required=True, metavar="DIR", help="the dataset folder to write (or add to)")
    mine.add_argument("--count", type=option(COUNT), metavar="N", help="frames to pick (default 50)")
    mine.add_argument("--all", action="store_true", help="pre-annotate every image of a folder instead of picking")
    mine.add_argument("--min-gap", type=option(SECONDS_OR_ZERO), default=1.0, metavar="S", help="seconds between two picks of one video (default 1)")
    mine.add_argument("--known", action="append", default=[], metavar="DIR",
                      help="photos already labelled, e.g. your training set (repeatable): picks must be novel against them too, never their near-duplicates")
    mine.add_argument("--no-mirror", action="store_true", help="skip the mirrored-frame check (half the model runs)")
    mine.add_argument("--max-frames", type=option(COUNT_OR_ZERO), metavar="N", help="stop reading each source after N frames (live sources)")
    mine.add_argument("--no-progress", action="store_true", help="no progress bar")
    model = _add_model_options(mine)
    model.add_argument("--labels", metavar="FILE", help="label_map.pbtxt or labelmap.txt (default: packed in the model or beside it)")
    select = mine.add_argument_group("which detections")
    add_threshold_option(select, "the deployment threshold: boxes from it are pre-annotated, scores near it are unsure")
    select.add_argument("--classes", metavar="A,B", help="mine and label only these classes (also the dataset's label map; see below without it)")
    regions = mine.add_argument_group("which parts of each frame to infer")
    regions.add_argument("--tiles", action="store_true", help="as 'run --tiles': pre-annotate from the tiles, and pick frames where tiles and frame disagree")
    regions.add_argument("--tile-size", type=option(TILE_SIZE), metavar="PX", help="tile side with --tiles (default: twice the model's input)")
    _add_stream_options(mine, after_reconnect="mining ends")
    mine.set_defaults(handler=command_mine)
    return mine


def command_mine(args: argparse.Namespace) -> int:
    from livedroid.labelling.command import command_mine as mine

    from livedroid.engine import EngineSettings, wrap_regions

    settings = EngineSettings.from_args(args)
    return mine(args, lambda _, labels: settings.checked_classes(labels),
                lambda _, detectors: wrap_regions(settings, detectors))


REVIEW_EXAMPLES = """\
examples:
  livedroid review mined/intel             open http://127.0.0.1:8765/ and correct the boxes
  livedroid review my_photos/ --port 0 --open       
                                           a labelImg folder, any free port, in the browser

keys on the page:
  a, Enter      accept the frame as it is and go to the next
  s             skip it (decide later: not counted as reviewed)
  r             reject it: kept out of the dataset (its image and XML move to rejected/, its
                COCO entry goes); a on a rejected frame brings it back
  → n / ← p     next / previous frame
  click         select a box; drag inside it to move it, drag a corner to resize it
  drag          on empty image area: draw a missing box of the selected class
  Shift+drag    draw a box even inside another box
  1-9           pick the label-map class (relabels the selected box; also a dropdown)
  Delete, ⌫     delete the selected box
  Esc           deselect

Every change is saved at once, each file written aside and moved in place: annotations/NAME.xml,
review.json (each frame's state: accepted, edited, skipped, rejected) and coco.json (a mined
folder's, or a labelImg folder's that has one). The page counts the frames reviewed (accepted,
edited or rejected; skipped ones are not). Frames come in mined order (mined.jsonl), or name order
for a labelImg folder. "Add class" adds a class to label_map.pbtxt by name. Ctrl-C or SIGTERM
stops the review (exit 130) and releases the folder's lock.
"""


def add_review_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    review = commands.add_parser(
        "review",
        parents=[_verbose_flag()],
        help="check and correct pre-annotated frames in the browser (what 'mine' wrote, or a labelImg folder)",
        description=(
            "Serve a review page for DIR on 127.0.0.1: walk through the frames with their boxes and "
            "the reasons they were mined, accept, fix, draw, relabel or reject each. One review per "
            "folder at a time, and no 'mine' into it meanwhile (DIR/.livedroid.lock). Ctrl-C stops it."
        ),
        epilog=REVIEW_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    review.add_argument("folder", metavar="DIR", help="a folder 'livedroid mine' wrote, or a labelImg folder (images/, annotations/)")
    review.add_argument("--port", type=int, default=8765, help="where the page listens on 127.0.0.1 (default 8765; 0: any free port)")
    review.add_argument("--open", action="store_true", help="open the page in the default web browser")
    review.set_defaults(handler=command_review)
    return review


def command_review(args: argparse.Namespace) -> int:
    from livedroid.labelling.review import review

    return review(args.folder, args.port, args.open)


def command_run(args: argparse.Namespace) -> int:
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
    for option, path in named.items():
        if path is None:
            continue
        resolved = Path(path).expanduser().resolve()
        if resolved in seen:
            raise UserError(f"{seen[resolved]} and {option} both write {path}: give each output its own path")
        seen[resolved] = option


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


def _log_to_stderr(level: int) -> None:
    """livedroid's own messages as ``livedroid: …`` lines; other libraries' INFO chatter (TensorFlow,
    aiohttp, Ray) stays out, their warnings still reach stderr through Python's default handler."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("livedroid: %(message)s"))
    logger = logging.getLogger("livedroid")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    _log_to_stderr(logging.DEBUG if verbose else logging.INFO)
    # TensorFlow's C++ start-up lines (CUDA probing on machines without a GPU: "failed call to
    # cuInit") are not the user's business; its Python errors still surface.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        command = next((a for a in argv if not a.startswith("-")), None)
        if command in TRAINING_COMMANDS:
            return _run_training_command(command, argv[argv.index(command) + 1 :])
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 2
        return args.handler(args)
    except UserError as error:
        print(f"livedroid: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return interrupted()
    except Exception as error:  # noqa: BLE001 - a bug: never reported as success
        print(f"livedroid: internal error: {type(error).__name__}: {error} (a bug; the traceback follows)",
              file=sys.stderr)
        traceback.print_exception(error, limit=-8, file=sys.stderr)
        return 1


def _run_training_command(command: str, argv: list[str]) -> int:
    import importlib

    module_name = TRAINING_COMMANDS[command][0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UserError(
            f"'livedroid {command}' needs the training extra ({error.name or error}): pip install 'livedroid[train]'"
        ) from None
    return module.main(argv)
