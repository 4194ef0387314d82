"""Which steps of ``livedroid train DATA --out X`` are done, kept in ``WORK/steps.json``, so that a
rerun of the same command resumes at the step that failed: a failed export never costs the fit.

A step is skipped when an earlier run finished it with the same options and its output is still
there; once one step runs, every later one runs too (it reads what that step wrote).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path

STATE_FILE = "steps.json"


class StepLog:
    """The done steps of one work folder, read at the start of a run and written after each step."""

    def __init__(self, work: Path, steps: Sequence[str]) -> None:
        self.path = Path(work) / STATE_FILE
        self.steps = tuple(steps)
        self.records: dict[str, dict] = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        self._done_earlier: list[str] = []
        self._running = False

    def can_skip(self, step: str, options: dict, output: Path) -> bool:
        """Whether ``step`` was done earlier with these ``options`` and wrote ``output``, and no step
        before it ran in this run. The first step that runs says where the run resumes."""
        record = self.records.get(step)
        if not self._running and record and record["options"] == _as_json(options) and output.exists():
            self._done_earlier.append(f"{step}: {record['summary']}")
            return True
        if self._done_earlier and not self._running:
            print(f"{', '.join(self._done_earlier)}; resuming at {step}")
        self._running = True
        for later in self.steps[self.steps.index(step):]:  # made from what this step rewrites
            self.records.pop(later, None)
        self._save()
        return False

    def done(self, step: str, options: dict, summary: str) -> None:
        """Record that ``step`` finished with ``options``; ``summary`` is what a rerun says of it."""
        self.records[step] = {"options": _as_json(options), "summary": summary}
        self._save()

    def report_all_done(self) -> None:
        """Say so when every step was done earlier (the rerun only rewrites the model card)."""
        if not self._running and self._done_earlier:
            print(f"{', '.join(self._done_earlier)}; nothing left to run")

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.records, indent=2) + "\n", encoding="utf-8")


def with_quantization(command_line: Sequence[str], quantizations: Sequence[str]) -> str:
    """``command_line`` (as typed) with its ``--quantization`` values replaced, shell-quoted."""
    words, kept, skipping = list(command_line), [], False
    for word in words:
        if word == "--quantization":
            skipping = True
            continue
        if skipping and not word.startswith("-"):
            continue
        skipping = False
        kept.append(word)
    return shlex.join([*kept, "--quantization", *quantizations])


def _as_json(options: dict) -> dict:
    """``options`` as they read back from JSON (paths as text, tuples as lists)."""
    return json.loads(json.dumps(options, default=str))
