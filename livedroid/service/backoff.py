"""Waits between retries (a camera restarting, a recording trying again) that grow with every
failure, so that a fault that persists costs less and less, and start small again after a success."""

from __future__ import annotations


class Backoff:
    """Delays that double from ``first`` up to ``most``. ``reset`` starts again from ``first``; so
    does ``next`` after a try that ran ``healthy`` seconds or more (a camera that streamed a while
    before it failed), while a try that failed at once, however it failed, doubles the wait."""

    def __init__(self, first: float, most: float, healthy: float | None = None) -> None:
        self.first, self.most, self.healthy = first, most, healthy
        self._next = first

    def next(self, ran: float = 0.0) -> float:
        """The delay to wait now, after a try that lasted ``ran`` seconds; the one after it is
        twice as long (up to ``most``)."""
        if self.healthy is not None and ran >= self.healthy:
            self.reset()
        delay = self._next
        self._next = min(2 * delay, self.most)
        return delay

    def reset(self) -> None:
        self._next = self.first
