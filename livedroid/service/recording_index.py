"""The index of a recordings folder: one row per closed segment (camera, start, end, file, size,
what happened in it), in SQLite with a write-ahead log beside the segments, so that a kill -9 or a
power cut leaves every committed row, and a row only for a segment that was closed and plays."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
INDEX_FILE = "index.sqlite"
#: How long a writer waits for another camera's insert on the same index.
BUSY_TIMEOUT_S = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    camera TEXT NOT NULL,
    start REAL NOT NULL,      -- seconds since 1970 (UTC) of the first frame
    end REAL NOT NULL,        -- and of the end of the last one
    path TEXT NOT NULL UNIQUE, -- relative to the recordings folder
    bytes INTEGER NOT NULL,
    objects INTEGER NOT NULL, -- frames with a detection
    events INTEGER NOT NULL,  -- zone and line events during the segment
    motion INTEGER NOT NULL DEFAULT 0 -- frames that differ from the one before
);
CREATE INDEX IF NOT EXISTS segments_by_time ON segments (camera, start);
"""
_COLUMNS = "camera, start, end, path, bytes, objects, events, motion"
#: Columns added since the first index files, added to those when opened for writing.
_ADDED = {"motion": "INTEGER NOT NULL DEFAULT 0"}


@dataclass
class Segment:
    camera: str
    start: float
    end: float
    path: str
    bytes: int
    objects: int
    events: int
    motion: int = 0

    @property
    def kind(self) -> str:
        """What retention keeps it as: "events", "motion" (objects or movement) or "continuous"."""
        return "events" if self.events else "motion" if self.objects or self.motion else "continuous"

    def as_json(self, folder: Path) -> dict:
        """For /api/recordings: times in ISO 8601 (UTC), the path as the service sees it, and
        the URL that serves the file."""
        return {**asdict(self), "path": str(folder / self.path), "url": f"/api/recordings/{self.camera}/{Path(self.path).name}",
                "start": _iso(self.start), "end": _iso(self.end), "seconds": round(self.end - self.start, 3)}


class RecordingIndex:
    """The segments of one recordings folder; each call opens its own short connection, so that
    any camera's writer thread and the web server's may use it."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / INDEX_FILE

    def add(self, segment: Segment) -> None:
        """Record one closed segment (committed when this returns); creates the index if need be."""
        with self._connect() as connection:
            connection.execute(f"INSERT OR REPLACE INTO segments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               (segment.camera, segment.start, segment.end, segment.path, segment.bytes,
                                segment.objects, segment.events, segment.motion))

    def find(self, camera: str | None = None, start: float | None = None, end: float | None = None) -> list[Segment]:
        """The segments overlapping [start, end] (either open), oldest first; none without an index."""
        if not self.path.is_file():
            return []
        # every column there is: an index from before a column was added is read as it is
        query, arguments = "SELECT * FROM segments WHERE 1", []
        for condition, value in (("camera = ?", camera), ("end >= ?", start), ("start <= ?", end)):
            if value is not None:
                query += f" AND {condition}"
                arguments.append(value)
        return self._read(query + " ORDER BY start", arguments, _segments)

    def summary(self, camera: str) -> dict:
        """What the folder keeps of ``camera``: segments, bytes, the oldest one's start (ISO 8601)."""
        if not self.path.is_file():
            return {"segments_kept": 0, "recordings_bytes": 0, "oldest_kept": None}
        count, size, oldest = self._read("SELECT COUNT(*), COALESCE(SUM(bytes), 0), MIN(start) FROM segments WHERE camera = ?",
                                         [camera], lambda cursor: cursor.fetchone())
        return {"segments_kept": count, "recordings_bytes": size, "oldest_kept": None if oldest is None else _iso(oldest)}

    def _read(self, query: str, arguments: list, result: Callable[[sqlite3.Cursor], T]) -> T:
        try:
            with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)) as connection:
                return result(connection.execute(query, arguments))
        except sqlite3.OperationalError:
            # A full disk has no room for the log's shared memory: read the file as it is at rest
            # (every writer's connection closed, so every row is in it).
            with closing(sqlite3.connect(f"{self.path.absolute().as_uri()}?immutable=1", uri=True)) as connection:
                return result(connection.execute(query, arguments))

    def prune(self, max_bytes: int | None, free_needed: int = 0) -> list[tuple[Segment, str]]:
        """Delete the oldest segments, rows then files, until the rest hold at most ``max_bytes``
        and ``free_needed`` bytes are freed, whatever their age. The segment being written has no
        row yet: it is never one of them, but room is kept for it, so that the folder stays under
        ``max_bytes`` on disk: each camera still recording here (its newest segment ended within
        three of its lengths of the newest of all) is counted with one more segment as big as its
        newest. Returns those deleted, each with why ("size" or "free_space").

        On a disk so full that the index cannot even write its journal, the oldest segment's file
        goes first, then the rows: the one case where a crash could leave a row without its file
        (a listed segment that 404s, and goes at the next pass), rather than recording stopping for good."""
        try:
            return self._prune(max_bytes, free_needed)
        except sqlite3.OperationalError:
            oldest = self.find()[:1]  # a read needs no room
            if free_needed <= 0 or not oldest:
                raise
            (self.folder / oldest[0].path).unlink(missing_ok=True)
            return self._prune(max_bytes, free_needed)

    def _prune(self, max_bytes: int | None, free_needed: int) -> list[tuple[Segment, str]]:
        removed: list[tuple[Segment, str]] = []
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")  # one camera at a time decides what goes
            total = connection.execute("SELECT COALESCE(SUM(bytes), 0) FROM segments").fetchone()[0]
            total += _in_flight(connection)
            for row in connection.execute(f"SELECT {_COLUMNS} FROM segments ORDER BY start").fetchall():
                if max_bytes is not None and total > max_bytes:
                    reason = "size"
                elif free_needed > 0:
                    reason = "free_space"
                else:
                    break
                removed.append((Segment(*row), reason))
                total -= removed[-1][0].bytes
                free_needed -= removed[-1][0].bytes
            connection.executemany("DELETE FROM segments WHERE path = ?", [(segment.path,) for segment, _ in removed])
        self._remove_files([segment for segment, _ in removed])
        return removed

    def expire(self, keep: dict[str, dict[str, float]], now: float, limit: int) -> list[Segment]:
        """Delete at most ``limit`` segments, oldest first, that ended longer ago than their camera
        keeps their kind (``keep[camera][kind]`` seconds; a kind a camera does not name stays)."""
        removed: list[Segment] = []
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            for camera, seconds in keep.items():
                oldest = now - min(seconds.values())  # nothing newer can be old enough
                cursor = connection.execute(f"SELECT {_COLUMNS} FROM segments WHERE camera = ? AND end < ? ORDER BY start",
                                            (camera, oldest))
                for segment in _segments(cursor):
                    if len(removed) == limit:
                        break
                    if now - segment.end > seconds.get(segment.kind, float("inf")):
                        removed.append(segment)
            connection.executemany("DELETE FROM segments WHERE path = ?", [(segment.path,) for segment in removed])
        self._remove_files(removed)
        return removed

    def remove(self, segments: list[Segment]) -> None:
        """Delete these segments: their rows, then their files."""
        with self._connect() as connection:
            connection.executemany("DELETE FROM segments WHERE path = ?", [(segment.path,) for segment in segments])
        self._remove_files(segments)

    def _remove_files(self, segments: list[Segment]) -> None:
        """After the rows' commit: a crash between leaves a file unlisted, never a row without file."""
        for segment in segments:
            path = self.folder / segment.path
            path.unlink(missing_ok=True)
            _remove_if_empty(path.parent)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A short connection that commits at the end of the ``with`` (rolls back on an error)."""
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            # With WAL: a kill -9 loses no committed row; a power cut at worst the last ones.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            present = {row[1] for row in connection.execute("PRAGMA table_info(segments)")}
            for column, declaration in _ADDED.items():
                if column not in present:  # an index written by an older livedroid
                    connection.execute(f"ALTER TABLE segments ADD COLUMN {column} {declaration}")
            with connection:
                yield connection
        finally:
            connection.close()


def _in_flight(connection: sqlite3.Connection) -> int:
    """The bytes the segments being written will hold: one like its newest for each camera still recording."""
    newest = connection.execute("SELECT bytes, start, end FROM segments AS s "
                                "WHERE start = (SELECT MAX(start) FROM segments WHERE camera = s.camera)").fetchall()
    latest = max((end for _, _, end in newest), default=0.0)
    return sum(size for size, start, end in newest if end >= latest - 3 * (end - start))


def _segments(cursor: sqlite3.Cursor) -> list[Segment]:
    names = [column[0] for column in cursor.description]
    return [Segment(**dict(zip(names, row))) for row in cursor.fetchall()]


def _remove_if_empty(folder: Path) -> None:
    """A day's folder goes with its last segment."""
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (or already gone)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="milliseconds")
