"""The batch driver: decides what is left to do, hands it to an executor, records each outcome,
shows progress and sums up. Executors (local processes, Ray) only run files."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
from tqdm import tqdm

from livedroid.batch.files import FileJob
from livedroid.batch.manifest import DONE, FAILED, INCOMPLETE, INTERRUPTED, SKIPPED, Manifest, Outcome
from livedroid.batch.task import BatchSettings
from livedroid.errors import UserError
from livedroid.signals import StopOnSignals
from livedroid.wording import plural


class Executor(Protocol):
    description: str

    def run(self, jobs: list[FileJob], on_frames: Callable[[int], None]) -> Iterator[Outcome]:
        """The outcome of every file it started, as each ends."""

    def stop(self) -> None:
        """Stop soon (safe to call from a signal handler): files in flight stay ``.partial``."""


@dataclass
class BatchSummary:
    files: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    incomplete: int = 0
    interrupted: int = 0
    frames: int = 0
    seconds: float = 0.0
    stopped: bool = False

    @property
    def not_started(self) -> int:
        return self.files - self.done - self.skipped - self.failed - self.incomplete - self.interrupted

    @property
    def exit_status(self) -> int:
        """130 after Ctrl-C or SIGTERM, 1 when any file failed or was damaged, else 0."""
        return 130 if self.stopped else 1 if self.failed or self.incomplete else 0

    def line(self) -> str:
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        parts = [f"{self.done} done", f"{self.skipped} skipped (already complete)", f"{self.failed} failed"]
        if self.incomplete:
            parts.append(f"{self.incomplete} incomplete (damaged input: what was read is kept, retried next time)")
        if self.stopped:
            parts += [f"{self.interrupted} interrupted (left .partial, redone next time)", f"{self.not_started} not started"]
        return f"{plural(self.files, 'file')}: {', '.join(parts)} | {self.frames} frames in {self.seconds:.1f} s ({fps:.1f} fps)"


def run_batch(
    jobs: list[FileJob],
    settings: BatchSettings,
    executor: Executor,
    manifest_path: Path,
    *,
    redo: bool = False,
    progress: bool = True,
) -> BatchSummary:
    """Annotate every file of ``jobs`` not already complete; one manifest record per file."""
    started = time.perf_counter()
    manifest = Manifest(manifest_path)
    fingerprint = settings.fingerprint()
    summary = BatchSummary(files=len(jobs))
    todo = []
    for job in jobs:
        record = None if redo else manifest.completed(job, fingerprint)
        if record:
            manifest.append({**record, "status": SKIPPED, "finished_at": time.time()})
            summary.skipped += 1
        else:
            todo.append(job)
    if summary.skipped:
        _say(f"livedroid: {summary.skipped} of {plural(len(jobs), 'file')} already complete, skipped")
    # Longest first: the last files to start are short ones, so no worker idles at the end.
    todo.sort(key=lambda job: _size(job.input), reverse=True)
    # Nothing to do (a rerun where every file is complete): the line above says it, no empty bars.
    bars = progress and bool(todo)
    file_bar = tqdm(total=len(jobs), initial=summary.skipped, unit="file", desc="files", disable=not bars,
                    dynamic_ncols=True, position=0)
    frame_bar = tqdm(total=sum(_frame_count(job.input) for job in todo), unit="frame", desc="frames",
                     disable=not bars, dynamic_ncols=True, position=1)
    try:
        def stop() -> None:
            summary.stopped = True
            executor.stop()

        with StopOnSignals(stop, finishing="stopping; finished files stay complete"):
            for outcome in executor.run(todo, frame_bar.update) if todo else ():
                try:
                    manifest.append(outcome)
                except UserError:  # a full disk: stop the files in flight (left .partial) and the rest
                    executor.stop()
                    raise
                if outcome.status == DONE:
                    summary.done += 1
                    summary.frames += outcome.frames
                elif outcome.status == FAILED:
                    summary.failed += 1
                    error = outcome.error if outcome.input in (outcome.error or "") else f"{outcome.input}: {outcome.error}"
                    _say(f"livedroid: failed: {error}" + ("; its traceback is in the manifest (a bug: please report it)"
                                                           if outcome.traceback else ""))
                elif outcome.status == INCOMPLETE:
                    summary.incomplete += 1
                    summary.frames += outcome.frames
                    _say(f"livedroid: incomplete: {outcome.error}")
                elif outcome.status == INTERRUPTED:
                    summary.interrupted += 1
                if outcome.status != INTERRUPTED:
                    file_bar.update(1)
    finally:
        frame_bar.close()
        file_bar.close()
        manifest.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _say(line: str) -> None:
    """A line on stderr that leaves the progress bars intact."""
    tqdm.write(line, file=sys.stderr)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _frame_count(path: str) -> int:
    """The frame count a file's header states, for the progress bar (0 when unreadable)."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return stream.frames
            rate = stream.average_rate or stream.guessed_rate
            duration = stream.duration * stream.time_base if stream.duration else (container.duration or 0) / av.time_base
            return round(float(duration * rate)) if rate else 0
    except (av.FFmpegError, OSError, IndexError, ValueError):
        return 0
