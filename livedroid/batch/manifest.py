"""``DIR/manifest.jsonl``: one record per file and run, appended as each file ends.

A rerun reads the last record of each file and skips it only when its outputs are still what the
record says (sizes, and frame counts read back from the JSON Lines file and the video container),
the input is unchanged and the detection settings are the same.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av

from livedroid import folder_lock
from livedroid.batch.files import FileJob
from livedroid.errors import UserError

log = logging.getLogger(__name__)

DONE, SKIPPED, FAILED, INTERRUPTED = "done", "skipped", "failed", "interrupted"
#: the input is damaged: its outputs hold what could be read; redone on the next run
INCOMPLETE = "incomplete"


@dataclass
class Outcome:
    """What became of one file: returned by the worker, written to the manifest by the driver."""

    name: str
    input: str
    status: str
    settings: str
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None
    #: where an internal error (a bug, not the file's fault) was raised, for its report
    traceback: str | None = None
    video: str | None = None
    video_bytes: int | None = None
    jsonl: str | None = None
    jsonl_bytes: int | None = None
    input_bytes: int | None = None
    input_mtime: float | None = None
    finished_at: float = field(default_factory=time.time)

    @classmethod
    def of(cls, job: FileJob, settings: str, status: str, **details: object) -> "Outcome":
        """An outcome with the input's identity (size, mtime) and, when done, the outputs' sizes."""
        outcome = cls(job.name, job.input, status, settings, **details)
        if os.path.exists(job.input):
            stat = os.stat(job.input)
            outcome.input_bytes, outcome.input_mtime = stat.st_size, stat.st_mtime
        if status in (DONE, INCOMPLETE):
            outcome.jsonl, outcome.jsonl_bytes = str(job.jsonl), job.jsonl.stat().st_size
            if job.video:
                outcome.video, outcome.video_bytes = str(job.video), job.video.stat().st_size
        return outcome


class Manifest:
    """The append-only record of a batch folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last: dict[str, dict] = {}
        #: the file ends in a line cut short by a crash: the next record starts a line of its own
        self._torn = False
        if path.exists():
            text = path.read_text(encoding="utf-8", errors="replace")
            self._torn = bool(text) and not text.endswith("\n")
            unreadable = 0
            for line in text.splitlines():
                try:
                    record = json.loads(line)
                    self.last[record["name"]] = record
                except (ValueError, KeyError, TypeError):
                    unreadable += 1  # a line cut short by a crash: that file is simply redone
            if unreadable:
                log.warning("%s: skipped %d unreadable line(s) (a run cut short?); their files are redone",
                            path, unreadable)
        self._stream = None

    def completed(self, job: FileJob, settings: str) -> dict | None:
        """The record of ``job`` if its outputs are complete and current, else None."""
        record = self.last.get(job.name)
        if not record or record.get("status") not in (DONE, SKIPPED) or record.get("settings") != settings:
            return None
        if record.get("input") != job.input or not _same_file(job.input, record):
            return None
        if not _complete(job.jsonl, record.get("jsonl_bytes"), record["frames"], _count_lines):
            return None
        if job.video and not _complete(job.video, record.get("video_bytes"), record["frames"], _count_video_frames):
            return None
        return record

    def append(self, outcome: Outcome | dict) -> None:
        """Add one record, on disk (fsync) when this returns. A record that cannot be written (a
        full disk) is one line, and the file is cut back to the records before it: none is torn."""
        record = asdict(outcome) if isinstance(outcome, Outcome) else outcome
        line = (("\n" if self._torn else "") + json.dumps(record) + "\n").encode("utf-8")
        if self._stream is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = open(self.path, "ab", buffering=0)  # unbuffered: a failed write is not retried at close
        end = os.fstat(self._stream.fileno()).st_size
        try:
            written = 0
            while written < len(line):  # a write may stop short when the disk fills
                written += self._stream.write(line[written:])
            os.fsync(self._stream.fileno())
        except OSError as error:
            with contextlib.suppress(OSError):
                os.ftruncate(self._stream.fileno(), end)
            raise UserError(f"cannot write {self.path}: {error.strerror or error}") from None
        self._torn = False
        self.last[record["name"]] = record

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class FolderLock(folder_lock.FolderLock):
    """One ``batch`` at a time on an output folder, and no ``mine`` or ``review`` in it meanwhile:
    the folder lock those commands take (:mod:`livedroid.folder_lock`), the folder made first."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, "batch", advice="wait for it, or give another --out")

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        super().acquire()


def _same_file(path: str, record: dict) -> bool:
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return stat.st_size == record.get("input_bytes") and stat.st_mtime == record.get("input_mtime")


def _complete(path: Path, size: int | None, frames: int, count) -> bool:
    try:
        return path.stat().st_size == size and count(path) == frames
    except (OSError, av.FFmpegError):
        return False


def _count_lines(path: Path) -> int:
    with open(path, "rb") as stream:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))


def _count_video_frames(path: Path) -> int:
    """The frame count the container's index states (MP4: the sample table), not decoded."""
    with av.open(str(path)) as container:
        return container.streams.video[0].frames
