"""``livedroid mine``: its options (the command itself: livedroid/labelling/command.py)."""

from __future__ import annotations

import argparse

from livedroid.commands.options import (
    add_model_options, add_selection_options, add_stream_options, add_tile_options, verbose_flag,
)
from livedroid.settings import COUNT, COUNT_OR_ZERO, SECONDS_OR_ZERO, option

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


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    mine = commands.add_parser(
        "mine",
        parents=[verbose_flag()],
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
    add_model_options(mine)
    add_selection_options(
        mine.add_argument_group("which detections"), max_detections=False,
        threshold_help="the deployment threshold: boxes from it are pre-annotated, scores near it are unsure",
        classes_help="mine and label only these classes (also the dataset's label map; see below without it)",
    )
    add_tile_options(
        mine.add_argument_group("which parts of each frame to infer"),
        "as 'run --tiles': pre-annotate from the tiles, and pick frames where tiles and frame disagree",
        "tile side with --tiles (default: twice the model's input)",
    )
    add_stream_options(mine, after_reconnect="mining ends")
    mine.set_defaults(handler=command)
    return mine


def command(args: argparse.Namespace) -> int:
    from livedroid.labelling.command import command_mine

    return command_mine(args)
