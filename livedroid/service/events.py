"""Where the cameras' zone and line events go: the recent ones for the page and /api/events,
and every subscriber (MQTT) as they happen."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

Subscriber = Callable[[str, dict], None]


class EventHub:
    """Keeps the last ``keep`` events of all cameras and hands each one to the subscribers."""

    def __init__(self, keep: int = 500) -> None:
        #: (seconds since 1970 when it happened, the event)
        self._recent: deque[tuple[float, dict]] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self.subscribers: list[Subscriber] = []
        self.counts: dict[str, int] = {}

    def publish(self, camera: str, event: dict) -> None:
        event = {"camera": camera, **event}
        with self._lock:
            self._recent.append((time.time(), event))
            self.counts[camera] = self.counts.get(camera, 0) + 1
        for subscriber in self.subscribers:
            subscriber(camera, event)

    def recent(self, limit: int = 100, camera: str | None = None) -> list[dict]:
        """The newest events first."""
        return [event for _, event in self.recent_at(limit, camera)]

    def recent_at(self, limit: int = 100, camera: str | None = None) -> list[tuple[float, dict]]:
        """The newest events first, each with when it happened (seconds since 1970)."""
        with self._lock:
            events = [(at, e) for at, e in reversed(self._recent) if camera is None or e["camera"] == camera]
        return events[:limit]

    def log_for(self, camera: str) -> "CameraEventLog":
        return CameraEventLog(self, camera)


class CameraEventLog:
    """The event log one camera's ZoneAnalytics writes to (the interface of JsonLinesFile)."""

    def __init__(self, hub: EventHub, camera: str) -> None:
        self.hub = hub
        self.camera = camera
        self.path = f"livedroid/{camera}/events"
        self.count = 0

    def start(self) -> None:
        """Nothing to open: events go to the hub."""

    def write(self, record: dict) -> None:
        self.count += 1
        self.hub.publish(self.camera, record)

    def close(self, complete: bool = True) -> None:
        """Nothing to finish: each event left when it happened."""
