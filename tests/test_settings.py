"""Every command checks a setting the same way, with the same line, before anything loads
(livedroid/settings.py), and ``serve`` knows which per-camera options were typed."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest

from livedroid.cli import build_parser
from livedroid.errors import UserError
from livedroid.service.command import service_config
from livedroid.settings import COUNT, SCORE, Range
from livedroid.training import cli as train_cli
from livedroid.training import eval_cli
from tests.conftest import run_cli

# The words each command needs besides the option under test, and the parser that reads them.
COMMANDS = {
    "run": (build_parser, ["run", "clip.mp4"]),
    "batch": (build_parser, ["batch", "clips/", "--out", "out"]),
    "serve": (build_parser, ["serve"]),
    "mine": (build_parser, ["mine", "clip.mp4", "--out", "mined"]),
    "bench": (build_parser, ["bench", "clip.mp4"]),
    "eval": (eval_cli.build_parser, ["star-wars", "photos/"]),
    "train eval": (lambda: train_cli._step_parser("eval"), ["--run", "runs/x"]),
}
THRESHOLD_COMMANDS = ["run", "batch", "serve", "mine", "eval", "train eval"]
WORKER_COMMANDS = ["run", "batch", "serve", "mine", "bench"]


def parse_error(command: str, option: list[str], capsys) -> str:
    """The one stderr line of a command refusing ``option`` while parsing, exit 2."""
    make_parser, words = COMMANDS[command]
    with pytest.raises(SystemExit) as exit:
        make_parser().parse_args([*words, *option])
    assert exit.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("value", ["nan", "inf", "5", "-1", "-0.5", "0", "1", "1e309", "half"])
def test_a_bad_threshold_is_the_same_line_in_every_command(value: str, capsys) -> None:
    lines = {command: parse_error(command, ["-t", value], capsys) for command in THRESHOLD_COMMANDS}
    assert set(lines.values()) == {
        f"livedroid: error: argument -t/--threshold: expected a score above 0 and below 1, got {value if value != 'half' else repr(value)}"
    }, lines


@pytest.mark.parametrize("option", ["--batch", "--workers", "--threads"])
@pytest.mark.parametrize("value", ["0", "-2", "1.5", "nan"])
def test_a_bad_count_is_the_same_line_in_every_command(option: str, value: str, capsys) -> None:
    lines = {command: parse_error(command, [option, value], capsys) for command in WORKER_COMMANDS}
    assert len(set(lines.values())) == 1, lines
    assert next(iter(lines.values())).startswith(f"livedroid: error: argument {option}: expected a whole number of at least 1")


@pytest.mark.parametrize(
    "command, option, words",
    [
        ("run", ["--connect-timeout", "nan"], "argument --connect-timeout: expected seconds above 0, got nan"),
        ("serve", ["--read-timeout", "-1"], "argument --read-timeout: expected seconds above 0, got -1"),
        ("serve", ["--detect-fps", "inf"], "argument --detect-fps: expected frames a second above 0, got inf"),
        ("serve", ["--mqtt-queue", "0"], "argument --mqtt-queue: expected a whole number of at least 1, got 0"),
        ("run", ["--crf", "52"], "argument --crf: expected an H.264 quality from 0 to 51, got 52"),
        ("run", ["--tile-size", "-5"], "argument --tile-size: expected a tile side in pixels of at least 32, got -5"),
        ("run", ["--max-detections", "0"], "argument --max-detections: expected a whole number of at least 1, got 0"),
        ("run", ["--track-buffer", "-1"], "argument --track-buffer: expected a whole number of at least 0, got -1"),
        ("mine", ["--min-gap", "nan"], "argument --min-gap: expected seconds of at least 0, got nan"),
        ("bench", ["--live-seconds", "-1"], "argument --live-seconds: expected seconds of at least 0, got -1"),
        ("batch", ["--gpus-per-file", "inf"], "argument --gpus-per-file: expected a GPU count of at least 0, got inf"),
    ],
)
def test_every_size_and_rate_is_checked_while_parsing(command: str, option: list[str], words: str, capsys) -> None:
    assert parse_error(command, option, capsys) == f"livedroid: error: {words}"


def test_good_values_pass_as_numbers() -> None:
    args = build_parser().parse_args(["run", "clip.mp4", "-t", "0.25", "--batch", "4", "--connect-timeout", "2.5"])
    assert (args.threshold, args.batch, args.connect_timeout) == (0.25, 4, 2.5)
    assert build_parser().parse_args(["run", "clip.mp4"]).threshold == 0.5


def test_a_range_checks_yaml_values_too() -> None:
    assert SCORE.check(0.3) == 0.3 and COUNT.check(3.0) == 3
    for value in (float("nan"), 1.0, 0, True, "0.5", [0.5]):
        with pytest.raises(ValueError, match="expected a score above 0 and below 1"):
            SCORE.check(value)
    assert Range("a share", above=0, high=1).describe() == "a share above 0 and at most 1"


def test_a_bad_threshold_stops_run_before_anything_loads(tmp_path: Path) -> None:
    """As typed: no model, no clip needed, the line at once."""
    started = time.monotonic()
    result = run_cli("run", "no-such-clip.mp4", "-t", "nan", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr == "livedroid: error: argument -t/--threshold: expected a score above 0 and below 1, got nan\n"
    assert time.monotonic() - started < 30


def serve_args(*words: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *words])


def test_serve_sees_an_option_typed_at_its_default_beside_a_config(tmp_path: Path) -> None:
    config = tmp_path / "cameras.yaml"
    config.write_text("cameras: [{name: a, source: a.mp4, threshold: 0.8}]\n")
    with pytest.raises(UserError, match="--threshold, --detect-fps: with --config FILE"):
        service_config(serve_args("--config", str(config), "--threshold", "0.5", "--detect-fps", "5"))
    assert service_config(serve_args("--config", str(config))).cameras[0].threshold == 0.8


def test_serve_cameras_from_sources_get_the_options_typed_or_the_defaults() -> None:
    typed, plain = (service_config(serve_args("a.mp4", "--loop", *extra)).cameras[0]
                    for extra in (["-t", "0.7", "--classes", "person"], []))
    assert (typed.threshold, typed.classes, typed.loop) == (0.7, ["person"], True)
    assert (plain.threshold, plain.classes, plain.detect_fps, plain.motion) == (0.5, None, 5.0, False)


@pytest.mark.parametrize(
    "words, model",
    [(["-m", "star-wars", "photos/"], "star-wars"), (["photos/", "-m", "star-wars"], "star-wars"),
     (["models/star-wars", "photos/"], "models/star-wars")],
)
def test_eval_takes_the_model_as_run_does_or_as_a_positional(words: list[str], model: str) -> None:
    args = eval_cli.build_parser().parse_args(words)
    assert eval_cli.chosen_model(args) == model and args.data == Path("photos/")


def test_eval_refuses_two_models() -> None:
    with pytest.raises(UserError, match="give the model once"):
        eval_cli.chosen_model(eval_cli.build_parser().parse_args(["a", "photos/", "-m", "b"]))
