"""What every sink offers, and safe creation of output files."""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame

log = logging.getLogger(__name__)


class Sink(ABC):
    """Receives every processed frame in order, then ``close()`` once, also after an interrupt."""

    #: Whether ``write`` wants the annotated picture (drawn once, shared by all sinks).
    needs_scene: bool = True
    #: Where the output lands, for the end-of-run message (None: nothing on disk).
    path: Path | None = None

    @abstractmethod
    def write(self, frame: Frame, detections: Detections, scene: np.ndarray | None) -> None:
        """Consume one frame's result."""

    def close(self, complete: bool = True) -> None:
        """Finish the output so that it plays. ``complete=False`` (the run failed) leaves files
        under their ``.partial`` name, so they never look like a finished run."""


class PartialFile:
    """An output written under ``NAME.partial`` and renamed to NAME only when complete.

    A run that fails or dies before ``finish(complete=True)`` leaves a file that plainly says it is unfinished, never
    one that looks complete. An existing NAME is refused unless ``overwrite``; the input itself
    is always refused. NAME's missing folders are made now, before any frame; a NAME that is a
    symlink is written where it points (the link stays), into a folder that must exist.
    """

    def __init__(self, path: str | Path, *, overwrite: bool, inputs: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        for source in inputs:
            if Path(source).exists() and Path(source).resolve() == self.path.resolve():
                raise UserError(f"output {self.path} is the input itself: choose another name")
        if self.path.exists() and not overwrite:
            raise UserError(f"output {self.path} exists: use --overwrite to replace it")
        #: where the file lands: NAME, or the file a symlink NAME points to
        self.target = Path(os.path.realpath(self.path)) if self.path.is_symlink() else self.path
        if self.target is not self.path and not self.target.parent.is_dir():
            raise UserError(f"cannot write {self.path}: it is a symlink to {os.readlink(self.path)}, "
                            "whose folder does not exist")
        make_folder(self.path.parent, self.path)
        self.partial = self.target.with_name(self.target.name + ".partial")

    def finish(self, complete: bool) -> None:
        """Give the file its real name, or, for a failed run, say where the unfinished one is."""
        if complete:
            os.replace(self.partial, self.target)
        elif self.partial.exists():
            log.warning("the run failed: unfinished output kept as %s", self.partial)


def make_folder(folder: Path, output: Path) -> None:
    """Make ``folder`` and its missing parents for ``output``. A folder that cannot be made (a
    read-only file system, a dangling symlink or a file in the way) is the user's to fix: one
    line naming the output and the folder, never a traceback."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        where = Path(error.filename) if error.filename else folder
        if where.is_symlink() and not where.exists():
            why = f"{where} is a symlink to {os.readlink(where)}, which does not exist"
        elif where.exists() and not where.is_dir():
            why = f"{where} is not a folder"
        else:
            why = f"cannot create folder {where} ({error.strerror or error})"
        raise UserError(f"cannot write {output}: {why}") from None
