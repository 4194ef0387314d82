"""``livedroid eval MODEL DATA``: measure any model ``livedroid run`` plays on any dataset
``prepare`` reads, with no training folder: the same metrics, mistakes and contact sheet as
``livedroid train eval`` (:func:`livedroid.training.evaluate.evaluate_detector`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from livedroid.commands.options import add_tile_options
from livedroid.settings import Parser, add_threshold_option
from livedroid.training.cli import run_command

EXAMPLES = """\
examples:
  livedroid eval models/star-wars ../shared/datasets/star-wars --match-label-names
  livedroid eval -m star-wars test-photos/               the model by name, as 'livedroid run -m'
  livedroid eval runs/pets/export/model_float32.tflite test-photos/ --out eval/pets-test
  livedroid eval coco-ssd-mobilenet-v2 mined/intel --classes person     # a mined folder you reviewed
  livedroid eval models/cells photos/ --tiles --tile-size 384   # small objects: is 'run --tiles' worth it?

Writes OUT/metrics.json (COCO mAP, mAP@0.5, mAP@0.75, per-class AP, and the mistakes at -t:
confusions, misses, duplicates, false alarms) and OUT/contact_sheet.png, mistakes first (false
alarms on background images, those annotated with no object, before the others).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="livedroid eval",
        description="COCO metrics and the mistakes of a model on annotated photos, as 'livedroid run' plays the model.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", nargs="?",
                        help="a .tflite file, a SavedModel folder, or a model name under models/ (or give it as -m MODEL)")
    parser.add_argument("-m", "--model", dest="model_option", metavar="MODEL", help="the model, as 'livedroid run -m' takes it")
    parser.add_argument("data", type=Path, metavar="DATA", help="annotated photos in any format 'livedroid train prepare' reads")
    parser.add_argument("--out", type=Path, help="where metrics.json and contact_sheet.png go (default: eval/MODEL-on-DATA)")
    parser.add_argument("--labels", type=Path, metavar="FILE", help="label_map.pbtxt or labelmap.txt of the model (default: packed in it or beside it)")
    parser.add_argument("--images", type=Path, help="image folder of a DATA .json or .csv")
    add_threshold_option(parser, "the deployment threshold, as 'livedroid run -t': confusions, duplicates and the "
                                 "contact sheet count boxes from this score")
    parser.add_argument("--classes", metavar="A,B", help="measure only these classes (default: every class DATA has boxes of or its label_map.pbtxt names; on images annotated with no object, any box of them is a false alarm)")
    parser.add_argument("--label-alias", action="append", default=[], metavar="NAME=LABEL", help="read annotation class NAME as model class LABEL (repeatable)")
    parser.add_argument("--match-label-names", action="store_true", help="map annotation names that differ from the model's only in case and punctuation (bb8 → BB-8)")
    add_tile_options(
        parser.add_argument_group("tiles, as 'livedroid run --tiles' infers them"),
        "also infer overlapping tiles of each photo, merged per class: what 'run --tiles' would find "
        "(small objects); one model run per tile",
        "tile side with --tiles (default: twice the model's input)")
    parser.set_defaults(handler=_run)
    return parser


def main(argv: list[str]) -> int:
    return run_command(build_parser(), argv, ["livedroid", "eval", *argv])


def _run(args: argparse.Namespace) -> None:
    from livedroid.training.dataset.class_names import parse_aliases
    from livedroid.training.evaluate import evaluate_model

    model = chosen_model(args)
    out = args.out or Path("eval") / f"{Path(model).stem}-on-{args.data.resolve().name}"
    classes = {name.strip() for name in args.classes.split(",") if name.strip()} if args.classes else None
    evaluate_model(
        Path(model), args.data, out, labels=args.labels, min_score=args.threshold, images_dir=args.images,
        aliases=parse_aliases(args.label_alias), match_label_names=args.match_label_names, classes=classes,
        tiles=args.tiles, tile_size=args.tile_size,
    )


def chosen_model(args: argparse.Namespace) -> str:
    """The model given as MODEL or as ``-m MODEL`` (as ``run`` takes it), exactly once."""
    from livedroid.errors import UserError

    if args.model and args.model_option:
        raise UserError(f"two models: {args.model} and -m {args.model_option}; give the model once")
    if not (args.model or args.model_option):
        raise UserError("no model: livedroid eval MODEL DATA, or livedroid eval -m MODEL DATA")
    return args.model or args.model_option
