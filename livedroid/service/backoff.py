"""Waits between retries (a camera restarting, a recording trying again) that grow with every
failure, so that a fault that persists costs less and less, and start small again after a success."""

from __future__ import annotations


class Backoff:
    """Delays that double from ``first`` up to ``most``; ``reset`` starts again from ``first``."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most = first, most
        self._next = first

    def next(self) -> float:
        """The delay to wait now; the one after it is twice as long (up to ``most``)."""
        delay = self._next
        self._next = min(2 * delay, self.most)
        return delay

    def reset(self) -> None:
        self._next = self.first
