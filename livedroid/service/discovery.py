"""Home Assistant MQTT discovery: each camera as one device with its entities, announced by retained
configs on ``homeassistant/<component>/livedroid_<camera>/<object_id>/config``, and their state
topics, published only when a value changes (retained, so Home Assistant shows them after its own
restart):

- ``binary_sensor`` per watched class: ``livedroid/CAMERA/present/CLASS`` ``ON``/``OFF`` (``OFF``
  once the class has been unseen for PRESENT_HOLD_S, so one missed frame does not flicker);
- ``sensor`` per zone (objects inside now) and per line (crossings so far):
  ``livedroid/CAMERA/zone/NAME``, ``livedroid/CAMERA/line/NAME``;
- ``image``: ``livedroid/CAMERA/snapshot``, the annotated JPEG when a state above changed.

Every entity is available while both ``livedroid/available`` (the publisher's last will) and its
camera's ``livedroid/CAMERA/available`` read ``online``: the camera's reads ``offline`` when no
frame came for ``stale_after_s`` (a camera down, reconnecting, or failing), ``online`` at its next.
unique_ids are made of the camera's and the zone's names only, so they survive restarts.
"""

from __future__ import annotations

import re
import threading
import time

from livedroid import __version__
from livedroid.service.config import CameraConfig

PREFIX = "homeassistant"
AVAILABILITY = "livedroid/available"
#: Seconds a class must be unseen before its binary sensor reads OFF.
PRESENT_HOLD_S = 2.0
#: A camera reads offline after this many seconds without a frame (or three frame intervals at
#: its detect_fps, if longer).
STALE_AFTER_S = 10.0
#: A watched class when a camera names none: what the default model is for.
DEFAULT_CLASSES = ("person",)
ORIGIN = {"name": "livedroid", "sw_version": __version__}


def slug(text: str) -> str:
    """``text`` fit for a topic level and an object_id (``traffic light`` → ``traffic_light``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def state_topic(camera: str, kind: str, name: str | None = None) -> str:
    return f"livedroid/{camera}/{kind}" + (f"/{slug(name)}" if name is not None else "")


def watched_classes(camera: CameraConfig) -> list[str]:
    return list(camera.classes or DEFAULT_CLASSES)


def configs(camera: CameraConfig) -> dict[str, dict]:
    """The camera's discovery configs by topic, as Home Assistant's MQTT discovery documents them."""
    device = {"identifiers": [f"livedroid_{camera.name}"], "name": f"livedroid {camera.name}",
              "manufacturer": "livedroid", "model": "camera", "sw_version": __version__}

    def entity(component: str, object_id: str, name: str, **keys: object) -> tuple[str, dict]:
        node = f"livedroid_{camera.name}"
        return f"{PREFIX}/{component}/{node}/{object_id}/config", {
            "name": name, "unique_id": f"{node}_{object_id}",
            "availability": [{"topic": AVAILABILITY}, {"topic": state_topic(camera.name, "available")}],
            "availability_mode": "all", "device": device, "origin": ORIGIN, **keys}

    found = [entity("binary_sensor", f"{slug(label)}_present", f"{label} present", device_class="occupancy",
                    state_topic=state_topic(camera.name, "present", label), payload_on="ON", payload_off="OFF")
             for label in watched_classes(camera)]
    found += [entity("sensor", f"zone_{slug(zone)}", f"{zone} objects", state_topic=state_topic(camera.name, "zone", zone),
                     state_class="measurement", unit_of_measurement="objects") for zone in camera.zones]
    found += [entity("sensor", f"line_{slug(line)}", f"{line} crossings", state_topic=state_topic(camera.name, "line", line),
                     state_class="total_increasing", unit_of_measurement="crossings") for line in camera.lines]
    found.append(entity("image", "snapshot", "snapshot", image_topic=state_topic(camera.name, "snapshot"),
                        content_type="image/jpeg"))
    return dict(found)


class CameraStates:
    """One camera's state topics: what they last said, and what to publish when that changes.
    Fed from the camera's thread (frames) and the event hub (zone and line events)."""

    def __init__(self, camera: CameraConfig) -> None:
        self.camera = camera.name
        self.stale_after_s = max(STALE_AFTER_S, 3 / camera.detect_fps)
        self._seen_at = {label: float("-inf") for label in watched_classes(camera)}
        self._frame_at = float("-inf")
        self._values: dict[str, str] = {state_topic(camera.name, "available"): "offline"}
        self._values |= {state_topic(camera.name, "present", label): "OFF" for label in self._seen_at}
        self._values |= {state_topic(camera.name, "zone", zone): "0" for zone in camera.zones}
        self._values |= {state_topic(camera.name, "line", line): "0" for line in camera.lines}
        self._pending: dict[str, str] = {}
        self._snapshot_due = True  # the first picture goes out as the snapshot
        self._lock = threading.Lock()

    def current(self) -> dict[str, str]:
        """Every state topic's value now (all of them, for a fresh connection)."""
        with self._lock:
            return dict(self._values)

    def frame(self, objects: dict[str, int], jpeg: bytes | None, now: float | None = None) -> dict[str, str | bytes]:
        """The topics to publish after a frame with ``objects`` (label counts): changed states, and
        the snapshot when anything changed since the last one."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._frame_at = now
            self._set(state_topic(self.camera, "available"), "online", picture=False)
            for label in self._seen_at:
                if objects.get(label):
                    self._seen_at[label] = now
                present = "ON" if now - self._seen_at[label] < PRESENT_HOLD_S else "OFF"
                self._set(state_topic(self.camera, "present", label), present)
            out: dict[str, str | bytes] = self._take()
            if self._snapshot_due and jpeg is not None:
                self._snapshot_due = False
                out[state_topic(self.camera, "snapshot")] = jpeg
            return out

    def tick(self, now: float | None = None) -> dict[str, str]:
        """Called every second or so: ``offline`` once no frame came for ``stale_after_s``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if now - self._frame_at > self.stale_after_s:
                self._set(state_topic(self.camera, "available"), "offline", picture=False)
            return self._take()

    def event(self, event: dict) -> dict[str, str]:
        """The topics to publish after a zone or line event (enter, exit: occupancy; cross: count)."""
        with self._lock:
            if "zone" in event and event.get("event") in ("enter", "exit"):
                topic = state_topic(self.camera, "zone", event["zone"])
                step = 1 if event["event"] == "enter" else -1
                self._set(topic, str(max(0, int(self._values.get(topic, "0")) + step)))
            elif "line" in event and event.get("event") == "cross":
                topic = state_topic(self.camera, "line", event["line"])
                self._set(topic, str(int(self._values.get(topic, "0")) + 1))
            return self._take()

    def _set(self, topic: str, value: str, picture: bool = True) -> None:
        if self._values.get(topic) != value:
            self._values[topic] = value
            self._pending[topic] = value
            self._snapshot_due = self._snapshot_due or picture

    def _take(self) -> dict[str, str]:
        pending, self._pending = self._pending, {}
        return pending
