"""Documentation that cannot drift: every ``livedroid …`` command in a fenced block of README.md
and docs/*.md goes through the real argument parsers (its options exist, its values are
accepted; nothing runs), the figures the docs quote from a benchmark's result file equal that
file's, and the site builds with ``mkdocs build --strict``."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, needs_module

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RESULTS = REPO / "benchmarks" / "results"
SHELL_OPERATORS = {"&&", "||", "|", ";", ">", ">>", "2>&1", "&"}
TRAINING_COMMANDS = {"train", "eval", "import-zoo", "import-zoo-checkpoint"}


@dataclass(frozen=True)
class Command:
    page: str
    line: int
    argv: tuple[str, ...]  # after "livedroid"

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: livedroid {shlex.join(self.argv)}"


def fenced_lines(path: Path) -> list[tuple[int, str]]:
    """The logical lines (continuations joined) inside the fenced blocks of ``path``."""
    lines, inside, pending, start = [], False, "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            inside = not inside
            continue
        if not inside:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        lines.append((start, pending + line))
        pending = ""
    return lines


def livedroid_invocations(tokens: list[str]) -> list[list[str]]:
    """The arguments of each ``livedroid`` (or ``.venv/bin/livedroid``) in one shell line, also
    one quoted whole for ``ray exec … 'livedroid batch …'``."""
    found = []
    for index, token in enumerate(tokens):
        if token.startswith("livedroid ") and index > 0:
            found += livedroid_invocations(shlex.split(token, comments=True))
        elif token == "livedroid" or token.endswith("/livedroid"):
            argv = []
            for argument in tokens[index + 1 :]:
                if argument in SHELL_OPERATORS:
                    break
                argv.append(argument)
            found.append(argv)
    return found


def documented_commands() -> tuple[list[Command], list[Command]]:
    """(commands to parse, usage synopses such as ``livedroid run SOURCE [-m MODEL]``)."""
    commands, synopses = [], []
    for path in PAGES:
        page = str(path.relative_to(REPO))
        for number, line in fenced_lines(path):
            text = line.strip().removeprefix("$ ")
            if "livedroid" not in text or text.startswith(("{", "|", "livedroid:")):
                continue  # JSON, tables and livedroid's own output lines
            try:
                tokens = shlex.split(text, comments=True)
            except ValueError:
                continue  # not shell (output of a command)
            for argv in livedroid_invocations(tokens):
                is_synopsis = any(token.startswith("[") or token.endswith("]") or token == "..." for token in argv)
                (synopses if is_synopsis else commands).append(Command(page, number, tuple(argv)))
    return commands, synopses


COMMANDS, SYNOPSES = documented_commands()


def parser_for(argv: tuple[str, ...]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The real parser that reads ``livedroid ARGV``, and the arguments left for it."""
    from livedroid.cli import build_parser

    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in TRAINING_COMMANDS:
        return build_parser(), list(argv)
    rest = list(argv[argv.index(command) + 1 :])
    if command == "eval":
        from livedroid.training.eval_cli import build_parser as eval_parser

        return eval_parser(), rest
    if command == "train":
        needs_module("object_detection", "the train parser lists the Object Detection API's templates (the train extra)")
        from livedroid.training import cli as training

        if rest and rest[0] in training.STEPS:
            return training._step_parser(rest[0]), rest[1:]
        return training._all_in_one_parser(), rest
    needs_module("tensorflow", f"livedroid {command}'s parser lives beside TensorFlow code (the train extra)")
    if command == "import-zoo":
        from livedroid.training.zoo_import import _parser
    else:
        from livedroid.training.zoo_checkpoint import _parser
    return _parser(), rest


def parse(argv: tuple[str, ...]) -> tuple[argparse.Namespace | None, str]:
    """``parse_args`` as ``livedroid`` runs it: (the namespace, or None after --help / --version;
    what argparse said on a mistake)."""
    parser, rest = parser_for(argv)
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
            return parser.parse_args(rest), ""
    except SystemExit as exit:
        if exit.code == 0:
            return None, ""
        return None, said.getvalue().strip() or f"exit {exit.code}"


def test_the_docs_have_commands_to_check():
    pages = {command.page for command in COMMANDS}
    assert len(COMMANDS) >= 50 and {"README.md", "docs/run.md", "docs/serve.md", "docs/training.md"} <= pages, pages


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_each_documented_command_parses(command: Command):
    args, said = parse(command.argv)
    assert not said, f"{command}\n{said}"
    if args is None:
        return
    from livedroid.analytics import parse_shape

    for kind in ("zone", "line"):  # checked after parsing, before anything runs: same code
        for text in getattr(args, kind, None) or []:
            parse_shape(kind, text)


@pytest.mark.parametrize("synopsis", SYNOPSES, ids=str)
def test_each_option_of_a_usage_line_exists(synopsis: Command):
    parser, rest = parser_for(synopsis.argv)
    if parser.prog == "livedroid":  # the command's own subparser
        parser = parser._subparsers._group_actions[0].choices[rest[0]]
    known = set(parser._option_string_actions)
    options = {match for token in rest for match in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", token)}
    assert options, synopsis
    assert options <= known, f"{synopsis}: {sorted(options - known)} unknown to livedroid {rest[0]}"


def test_a_wrong_option_in_the_docs_would_be_caught():
    """The check itself: a misspelt option and a value of the wrong type are refused."""
    assert "unrecognized arguments: --treshold" in parse(("run", "clip.mp4", "--treshold", "0.4"))[1]
    assert "--max-frames" in parse(("run", "clip.mp4", "--max-frames", "ten"))[1]
    assert parse(("--version",)) == (None, "")


# The figures the docs quote from benchmark result files --------------------------------------


def page(name: str) -> str:
    return " ".join((REPO / "docs" / name).read_text(encoding="utf-8").split())  # line breaks as spaces


def retention_phrases(summary: dict) -> list[str]:
    return [
        f"{summary['written_segments']} segments written, {summary['deleted_segments']} deleted oldest first",
        f"peaked at {summary['max_usage_mb']} MB",
        f"resident memory {summary['rss_first_mb']} MB after",
        f"{summary['rss_last_mb']} MB at the end",
    ]


@pytest.mark.parametrize("minutes", [3, 30])
def test_the_retention_figures_are_the_result_files(minutes: int):
    summary = json.loads((RESULTS / f"serve_retention_{minutes}min.json").read_text())["summary"]
    text = page("serve.md")
    missing = [phrase for phrase in retention_phrases(summary) if phrase not in text]
    assert not missing, f"docs/serve.md does not quote serve_retention_{minutes}min.json: {missing}"


def _map_pair(arm: dict | None) -> str:
    return "—" if arm is None else f"{arm['mAP@0.5']:.3f} / {arm['mAP']:.3f}"


def active_learning_rows() -> list[str]:
    """The docs' table rows, as the result file says they must read."""
    rows = []
    for run in json.loads((RESULTS / "active_learning.json").read_text()):
        rows.append(
            f"| {run['dataset']} | {run['seed']} | {run['pool']} / {run['test']} | {run['seed_images']} + {run['asked']} "
            f"| {run['steps']} | {_map_pair(run['seed_model'])} | {_map_pair(run.get('random'))} "
            f"| {_map_pair(run.get('mined'))} | {_map_pair(run.get('mined_known'))} |"
        )
        for arm, label in (("review_cost", "mined"), ("review_cost_known", "mined, --known"), ("review_cost_random", "random")):
            cost = run.get(arm)
            if cost:
                rows.append(
                    f"| {run['dataset']} {run['seed']} | {label} | {cost['boxes']} | {cost['kept']} ({cost['kept_share']:g}) "
                    f"| {cost['moved']} | {cost['relabelled']} | {cost['deleted']} | {cost['added']} |"
                )
    return rows


def test_the_active_learning_tables_are_the_result_file():
    lines = set((REPO / "docs" / "data-loop.md").read_text(encoding="utf-8").splitlines())
    missing = [row for row in active_learning_rows() if row not in lines]
    assert not missing, "docs/data-loop.md's tables differ from benchmarks/results/active_learning.json:\n" + "\n".join(missing)


def review_cost_rows(results: dict) -> list[str]:
    """The review-cost tables as benchmarks/review_cost.py writes them from its result file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("review_cost", REPO / "benchmarks" / "review_cost.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [row for row in module.markdown_tables(results) if row]


def test_the_review_cost_tables_are_the_result_file():
    results = json.loads((RESULTS / "review_cost.json").read_text(encoding="utf-8"))
    lines = set((REPO / "docs" / "data-loop.md").read_text(encoding="utf-8").splitlines())
    missing = [row for row in review_cost_rows(results) if row not in lines]
    assert not missing, "docs/data-loop.md's review-cost tables differ from benchmarks/results/review_cost.json:\n" + "\n".join(missing)
    results["photo_sets"][0]["mined_wrong"] += 1  # a changed figure would be caught
    assert any(row not in lines for row in review_cost_rows(results))


def test_a_changed_result_would_be_caught():
    summary = json.loads((RESULTS / "serve_retention_3min.json").read_text())["summary"]
    assert all(phrase in page("serve.md") for phrase in retention_phrases(summary))
    assert not all(phrase in page("serve.md") for phrase in retention_phrases({**summary, "max_usage_mb": 41.5}))


def test_every_test_prerequisite_is_in_the_contributing_page():
    """The programs the tests look for and the Debian packages .ci/run installs, each named there."""
    sources = "\n".join(path.read_text(encoding="utf-8") for path in (REPO / "tests").rglob("*.py"))
    programs = set(re.findall(r'shutil\.which\("([\w.+-]+)"\)', sources))
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    block = re.search(r"^apt_packages=\((.*?)^\)", ci, re.S | re.M).group(1)
    packages = {word for line in block.splitlines() for word in line.split("#", 1)[0].split()}
    page = (REPO / "docs" / "contributing.md").read_text(encoding="utf-8")
    assert {"ffmpeg", "chromium", "mosquitto", "Xvfb"} <= programs and "ffmpeg" in packages
    missing = sorted(name for name in programs | packages if f"`{name}" not in page and f" {name}" not in page)
    assert not missing, f"docs/contributing.md does not list these test prerequisites: {missing}"


# The site --------------------------------------------------------------------------------------


def test_the_site_builds_strict(tmp_path):
    """A broken link or anchor, or a page missing from mkdocs.yml's nav, fails the build."""
    needs_module("mkdocs", "the docs extra: pip install -e '.[docs]'")
    needs_module("material", "the docs extra: pip install -e '.[docs]'")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "serve" / "index.html").is_file()


def test_every_page_is_in_the_nav():
    """mkdocs only warns about it; the check is ours too, so a lenient build cannot hide one."""
    yaml = needs_module("yaml", "pyyaml (a runtime dependency)")
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]

    def pages_of(entries) -> set[str]:
        found = set()
        for entry in entries:
            for value in (entry.values() if isinstance(entry, dict) else [entry]):
                found |= pages_of(value) if isinstance(value, list) else {value}
        return found

    assert pages_of(nav) == {path.name for path in (REPO / "docs").glob("*.md")}


def test_the_pictures_are_small_and_used():
    images = sorted((REPO / "docs" / "images").iterdir())
    text = "\n".join(path.read_text(encoding="utf-8") for path in PAGES)
    assert len(images) >= 6
    for image in images:
        assert image.stat().st_size < 300_000, image
        assert f"images/{image.name}" in text, f"{image.name} is in no page"
