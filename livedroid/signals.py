"""Ctrl-C and SIGTERM for long-running commands: the first asks for a clean end, the second
stops waiting. One helper, so that ``run``, ``train`` and every later command behave alike."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

log = logging.getLogger("livedroid")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignals:
    """While active, the first SIGINT or SIGTERM calls ``stop`` (finish what is in flight, close
    the outputs); the next one calls ``cancel`` (stop at once), or raises KeyboardInterrupt when
    there is no ``cancel``. Without ``stop`` the signal is only counted: a caller that polls reads
    ``received`` (the handler then takes no lock the interrupted thread may hold). Outside the main
    thread, where Python cannot catch signals, it does nothing."""

    def __init__(
        self,
        stop: Callable[[], None] | None = None,
        cancel: Callable[[], None] | None = None,
        finishing: str = "finishing the frames in flight, then closing the outputs",
    ) -> None:
        self.stop = stop
        self.cancel = cancel
        self.finishing = finishing
        self.received = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopOnSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        self.received += 1
        name = signal.Signals(signum).name
        if self.received == 1:
            log.warning("%s: %s (again to stop at once)", name, self.finishing)
            if self.stop is not None:
                self.stop()
        elif self.cancel is not None:
            log.warning("%s again: stopping now", name)
            self.cancel()
        else:
            raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
