"""``livedroid review``: its options (the page and its API: livedroid/labelling/review.py)."""

from __future__ import annotations

import argparse

from livedroid.commands.options import verbose_flag

REVIEW_EXAMPLES = """\
examples:
  livedroid review mined/intel             open http://127.0.0.1:8765/ and correct the boxes
  livedroid review my_photos/ --port 0 --open       
                                           a labelImg folder, any free port, in the browser
  livedroid review exports/yolo            a YOLO export, corrected in its own label files
  livedroid review ls-export/ --images photos/
                                           a Label Studio export and the images it names

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

An export (YOLO, CVAT for images 1.1, COCO, Label Studio) is corrected in its own format, where
'train prepare' reads it: the label file, annotations.xml or JSON, the first write of each file
keeping the original once in DIR/review-originals/; classes are added to its class list; r is
refused there (delete the boxes and accept: a background image).
"""


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    review = commands.add_parser(
        "review",
        parents=[verbose_flag()],
        help="check and correct pre-annotated frames in the browser (what 'mine' wrote, or a labelImg folder)",
        description=(
            "Serve a review page for DIR on 127.0.0.1: walk through the frames with their boxes and "
            "the reasons they were mined, accept, fix, draw, relabel or reject each. One review per "
            "folder at a time, and no 'mine' into it meanwhile (DIR/.livedroid.lock). Ctrl-C stops it."
        ),
        epilog=REVIEW_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    review.add_argument("folder", metavar="DIR", help="a folder 'livedroid mine' wrote, a labelImg folder (images/, annotations/), "
                        "or a YOLO, CVAT for images 1.1, COCO or Label Studio export (corrected in its own format)")
    review.add_argument("--port", type=int, default=8765, help="where the page listens on 127.0.0.1 (default 8765; 0: any free port)")
    review.add_argument("--open", action="store_true", help="open the page in the default web browser")
    review.add_argument("--images", metavar="DIR", help="where an export's images are, when not beside it "
                        "(a Label Studio export holds none)")
    review.set_defaults(handler=command)
    return review


def command(args: argparse.Namespace) -> int:
    from livedroid.labelling.review import review

    return review(args.folder, args.port, args.open, args.images)
