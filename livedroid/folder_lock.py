"""One writer per folder: ``mine``, ``review`` and ``batch`` take the same lock on the folder they
write, so that two of them never interleave their writes (a ``mine`` into a folder under review
would leave ``coco.json`` and the XML files disagreeing).

The lock is ``DIR/.livedroid.lock``: a file ``flock``-ed while the command runs, holding its
process id and command. The kernel drops the ``flock`` when the process ends, however it ends
(``kill -9`` included), so a lock file whose ``flock`` is free was left by a process that is gone:
it is taken over with a warning naming that process. The file is removed on a clean exit. Without
``flock`` (Windows, some network file systems) the process id alone decides: a lock naming a live
process keeps the folder.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from livedroid.errors import UserError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

log = logging.getLogger("livedroid")

LOCK_NAME = ".livedroid.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class FolderLock:
    """The lock of ``folder`` for ``command`` (``"review"``, ``"mine"``, ``"batch"``); ``advice``
    ends the one-line refusal when another process holds it. Use as a context manager."""

    def __init__(self, folder: str | Path, command: str, advice: str = "wait for it to end, or give another folder") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = command
        self.advice = advice
        self.descriptor: int | None = None

    @property
    def held(self) -> bool:
        return self.descriptor is not None

    def holder(self) -> tuple[int | None, str]:
        """(process id, command) written in the lock file; the command is ``""`` when unknown."""
        try:
            words = self.path.read_text(encoding="utf-8").split()
        except OSError:
            return None, ""
        pid = int(words[0]) if words and words[0].isdigit() else None
        return pid, " ".join(words[1:2])

    def _busy(self) -> UserError:
        pid, command = self.holder()
        who = f"livedroid {command}" if command else "another livedroid command"
        process = f" (process {pid})" if pid is not None else ""
        return UserError(f"{self.folder} is in use by {who}{process}: one command writes a folder at a time; {self.advice}")

    def acquire(self) -> None:
        for _ in range(5):  # the holder may remove the file between our open and our flock
            try:
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise UserError(f"cannot create {self.path}: {error.strerror or error}") from None
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        raise self._busy() from None
                    except OSError:  # a file system without flock: the process id decides
                        self._check_pid()
                    # the file we locked must still be the one at the path (not one just removed)
                    try:
                        if os.stat(self.path).st_ino != os.fstat(descriptor).st_ino:
                            raise FileNotFoundError
                    except FileNotFoundError:
                        os.close(descriptor)
                        continue
                else:  # pragma: no cover
                    self._check_pid()
                previous = os.pread(descriptor, 256, 0).decode("ascii", "replace").split()
                if previous and previous[0] != str(os.getpid()):
                    what = f"the {previous[1]}" if len(previous) > 1 else "the command"
                    log.warning("%s: %s of process %s is gone: taking over its lock", self.path, what, previous[0])
                self._sign(descriptor)
            except BaseException:
                if self.descriptor != descriptor:
                    os.close(descriptor)
                raise
            self.descriptor = descriptor
            return
        raise UserError(f"{self.path}: cannot take the lock (another command keeps taking it)")

    def _sign(self, descriptor: int) -> None:
        """Write our process id and command into the lock, for the refusal another command prints.
        On a full disk the lock still holds (the flock is what excludes); only the name is missing,
        and the command goes on to say what cannot be written."""
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()} {self.command}\n".encode(), 0)
            os.fsync(descriptor)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise UserError(f"cannot write {self.path}: {error.strerror or error}") from None
            log.debug("%s: holding the lock unsigned: %s", self.path, error.strerror)

    def _check_pid(self) -> None:
        pid, _ = self.holder()
        if pid is not None and pid != os.getpid() and _alive(pid):
            raise self._busy()

    def release(self) -> None:
        if self.descriptor is None:
            return
        descriptor, self.descriptor = self.descriptor, None
        try:
            # still ours: the same file, with our id (removed before the flock goes: no gap)
            if os.stat(self.path).st_ino == os.fstat(descriptor).st_ino and self.holder()[0] == os.getpid():
                self.path.unlink()
        except OSError:
            pass
        finally:
            os.close(descriptor)

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
