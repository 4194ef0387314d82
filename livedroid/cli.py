"""The ``livedroid`` command line: builds the parser from the command modules
(:mod:`livedroid.commands`) and dispatches; ``train``, ``eval`` and ``import-zoo`` hand over to the
training package (the ``train`` extra)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback

from livedroid import __version__
from livedroid.commands import COMMANDS, EXAMPLES
from livedroid.commands.options import verbose_flag
from livedroid.errors import UserError, interrupted
from livedroid.settings import Parser

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


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="livedroid",
        description="Real-time object detection in video with detectors you trained yourself.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[verbose_flag()],
    )
    parser.add_argument("--version", action="version", version=f"livedroid {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"livedroid.commands.{name}").add_parser(commands)
    for name, (_, summary) in TRAINING_COMMANDS.items():
        commands.add_parser(name, help=summary, add_help=False)
    return parser


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
    module_name = TRAINING_COMMANDS[command][0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UserError(
            f"'livedroid {command}' needs the training extra ({error.name or error}): pip install 'livedroid[train]'"
        ) from None
    return module.main(argv)
