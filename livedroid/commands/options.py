"""The option groups the commands share, each declared once: the same option reads, checks and
explains itself the same way in every command (its range from :mod:`livedroid.settings`).

``serve`` declares its per-camera options with ``per_camera=True``: absent from the parsed
arguments unless typed (argparse.SUPPRESS), so that it tells an option typed at its default from
one not typed at all. :meth:`livedroid.engine.EngineSettings.from_args` reads them all.
"""

from __future__ import annotations

import argparse

from livedroid.detectors import BACKENDS, DEVICES
from livedroid.settings import (
    COUNT, COUNT_OR_ZERO, CRF, DEFAULT_CRF, DEFAULT_DETECT_EVERY, DEFAULT_FULL_EVERY, DEFAULT_MAX_DETECTIONS,
    DEFAULT_TRACK_BUFFER, SECONDS, TILE_SIZE, add_threshold_option, option,
)

RUN_WORKERS = "interpreters running in parallel (default: 2 for TFLite on 2+ cores, else 1)"
LABELS_HELP = "label_map.pbtxt or labelmap.txt (default: packed in the model or beside it)"
CLASSES_HELP = "keep only these label names, comma-separated"


def verbose_flag() -> argparse.ArgumentParser:
    """``-v`` is accepted before or after the command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log debugging details")
    return common


def add_model_options(parser: argparse.ArgumentParser, *, workers_help: str = RUN_WORKERS, labels: bool = True,
                      batch_default: int = 1, batch_help: str | None = None,
                      per_camera: bool = False) -> argparse._ArgumentGroup:
    """The model and how it runs (``--labels`` unless ``labels`` is False)."""
    model = parser.add_argument_group("model")
    model.add_argument(
        "-m", "--model", metavar="MODEL", default=argparse.SUPPRESS if per_camera else None,
        help="a .tflite file, a SavedModel folder, or a model name under models/ (default: coco-ssd-mobilenet-v2)",
    )
    model.add_argument("--backend", choices=sorted(BACKENDS), help="default: from the model's form (.tflite, .onnx, SavedModel folder)")
    model.add_argument("--device", choices=DEVICES, metavar="D",
                       help=f"where an ONNX model runs: {', '.join(DEVICES)} (default auto: the best provider installed)")
    model.add_argument("--threads", type=option(COUNT), metavar="N", help="threads per interpreter (default: the cores shared among the workers)")
    model.add_argument("--batch", type=option(COUNT), default=batch_default, metavar="N",
                       help=batch_help or f"frames per inference call when the model allows it (default {batch_default})")
    model.add_argument("--workers", type=option(COUNT), metavar="N", help=workers_help)
    if labels:
        model.add_argument("--labels", metavar="FILE", help=LABELS_HELP)
    return model


def add_selection_options(group: argparse._ActionsContainer, *, threshold_help: str = "minimum score",
                          classes_help: str = CLASSES_HELP, max_detections: bool = True,
                          per_camera: bool = False) -> None:
    """Which detections are kept: ``-t/--threshold``, ``--classes``, ``--max-detections``."""
    add_threshold_option(group, threshold_help, **({"default": argparse.SUPPRESS} if per_camera else {}))
    group.add_argument("--classes", metavar="A,B", help=classes_help, **_suppressed(per_camera))
    if max_detections:
        group.add_argument("--max-detections", type=option(COUNT), default=DEFAULT_MAX_DETECTIONS, metavar="N",
                           help=f"per frame (default {DEFAULT_MAX_DETECTIONS})")


def add_detection_options(parser: argparse.ArgumentParser, workers_help: str = RUN_WORKERS) -> None:
    """The model, its labels and which detections are kept: the same for ``run`` and ``batch``."""
    add_model_options(parser, workers_help=workers_help)
    add_selection_options(parser.add_argument_group("which detections"))


def add_tile_options(group: argparse._ArgumentGroup, tiles_help: str, tile_size_help: str) -> None:
    group.add_argument("--tiles", action="store_true", help=tiles_help)
    group.add_argument("--tile-size", type=option(TILE_SIZE), metavar="PX", help=tile_size_help)


def add_motion_option(group: argparse._ActionsContainer, motion_help: str, per_camera: bool = False) -> None:
    group.add_argument("--motion", action="store_true", help=motion_help, **_suppressed(per_camera))


def add_region_options(parser: argparse.ArgumentParser) -> None:
    """``--tiles`` and ``--motion`` with their settings (``run``)."""
    regions = parser.add_argument_group("which parts of each frame to infer (default: the whole frame)")
    add_tile_options(
        regions,
        "for 720p-4K frames with small objects: also infer overlapping tiles, merged per class "
        "(13 model runs a 1080p frame with the default model and tile size)",
        "tile side with --tiles: objects must fit in a tile, smaller tiles find smaller objects "
        "and cost more (default: twice the model's input, 600 for the default model)",
    )
    add_motion_option(
        regions,
        "infer only where something moved: moving objects every --detect-every frames, carried "
        "by a motion model in between; new motion at once; a full pass every --full-every frames, "
        "after a light change and while the camera moves (fixed cameras; one inference worker)",
    )
    regions.add_argument("--full-every", type=option(COUNT), default=DEFAULT_FULL_EVERY, metavar="N",
                         help=f"with --motion: a full-frame pass every N frames, which also checks still objects "
                              f"(default {DEFAULT_FULL_EVERY})")
    regions.add_argument("--detect-every", type=option(COUNT), default=DEFAULT_DETECT_EVERY, metavar="N",
                         help=f"with --motion: moving objects inferred every N frames (default {DEFAULT_DETECT_EVERY}; "
                              "1 infers them every frame)")


def add_tracking_options(parser: argparse.ArgumentParser) -> None:
    tracking = parser.add_argument_group(
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


def add_preset_option(group: argparse._ActionsContainer) -> None:
    from livedroid.codecs import DEFAULT_PRESET, X264_PRESETS

    group.add_argument("--preset", default=DEFAULT_PRESET, choices=X264_PRESETS, metavar="NAME",
                       help=f"x264 speed preset: faster ones cost less CPU and write larger files "
                            f"(default {DEFAULT_PRESET}; {', '.join(X264_PRESETS[:4])} …)")


def add_encoder_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--crf", type=option(CRF), default=DEFAULT_CRF, help=f"H.264 quality, lower is better (default {DEFAULT_CRF})")
    add_preset_option(group)


def add_stream_options(parser: argparse.ArgumentParser, after_reconnect: str) -> None:
    live = parser.add_argument_group("streams")
    live.add_argument("--connect-timeout", type=option(SECONDS), default=10.0, metavar="S", help="seconds to keep trying to open a stream at start (default 10)")
    live.add_argument("--reconnect-timeout", type=option(SECONDS), default=60.0, metavar="S",
                      help=f"seconds to keep reconnecting after a stream drops, then {after_reconnect} (default 60)")
    live.add_argument("--read-timeout", type=option(SECONDS), default=10.0, metavar="S", help="seconds without data before a stream counts as lost (default 10)")


def _suppressed(per_camera: bool) -> dict:
    return {"default": argparse.SUPPRESS} if per_camera else {}
