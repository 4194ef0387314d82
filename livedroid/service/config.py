"""The cameras of ``livedroid serve``: from the command line or a YAML file, checked up front.

A file looks like::

    http: 127.0.0.1:8080      # optional; --http wins
    token: s3cret             # needed when http binds beyond localhost
    mqtt: 127.0.0.1:1883
    defaults: {detect_fps: 4, threshold: 0.4}   # every camera's, unless it says otherwise
    cameras:
      - name: door
        source: rtsp://user:pass@10.0.0.5/stream
        classes: [person]
        zones: {desk: {points: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]], classes: [person]}}
        lines: {gate: [[0, 0.6], [1, 0.6]]}
        record: true                          # or motion | objects | events: only around those
        pre_capture: 5                        # seconds kept before them, and after
        post_capture: 5
      - name: demo
        source: clip.mp4                      # a file played as a camera
        loop: true
        detect_fps: 2
        motion: true                          # infer only where something moved
        privacy: {classes: [person], masks: {window: [[0, 0], [0.2, 0], [0.2, 0.3]]}, style: pixelate}

Cameras are a list so that a name used twice is seen (a YAML mapping keeps the last silently).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path

from livedroid.analytics import Shape, shapes_from_document
from livedroid.privacy import PrivacySettings, privacy_from_document
from livedroid.engine import EngineSettings
from livedroid.documents import check_keys, class_names, load_document, shown, wrong
from livedroid.errors import UserError
from livedroid.settings import DEFAULT_THRESHOLD, RATE, SCORE, SECONDS, SECONDS_OR_ZERO, SHARE, Range

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class CameraConfig:
    """One camera's settings; ``source`` is never shown to users unmasked."""

    name: str
    source: str
    model: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    classes: list[str] | None = None
    detect_fps: float = 5.0
    #: infer only where something moved (``run --motion``), on the frames detect_fps passes on
    motion: bool = False
    loop: bool = False
    #: False, True (continuous), or only around what happened: "motion", "objects", "events"
    record: bool | str = False
    #: with record: motion|objects|events, seconds kept before and after what happened
    pre_capture: float = 5.0
    post_capture: float = 5.0
    #: where this camera's segments go (default: the file's top-level ``recordings``)
    recordings: str | None = None
    segment_seconds: float = 10.0
    #: the most the folder's segments may hold: the oldest go beyond it (None: no limit)
    recordings_max_gb: float | None = None
    #: the same cap as a share of the folder's disk, 0-1 (with both, the smaller wins)
    recordings_max_share: float | None = None
    #: the free space the folder's disk keeps: the oldest segments go below it (None: 1 GB or 5 % of the disk)
    recordings_min_free_gb: float | None = None
    #: days to keep each kind of segment: {continuous: 3, motion: 7, events: 30} (a kind not named stays)
    retain: dict = field(default_factory=dict)
    #: as written (their names label the MQTT sensors); ``shapes`` holds them checked
    zones: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict)
    shapes: list[Shape] = field(default_factory=list)
    #: blurred classes and fixed masks, burned into the live view and the recordings
    privacy: PrivacySettings = field(default_factory=PrivacySettings)

    @property
    def engine(self) -> EngineSettings:
        """The camera's engine: tracked when it has zones or lines; with ``motion``, moving objects
        inferred on every frame detect_fps passes on (those frames are already few)."""
        return EngineSettings(threshold=self.threshold, classes=frozenset(self.classes) if self.classes else None,
                              motion=self.motion, detect_every=1, shapes=tuple(self.shapes), privacy=self.privacy)

    @property
    def keep_seconds(self) -> dict[str, float]:
        """Seconds to keep each kind of segment: a kind is kept at least as long as a lesser one
        (event clips longest), so ``{continuous: 3}`` keeps motion and events 3 days too."""
        keep, longest = {}, 0.0
        for kind in RETAINED_KINDS:
            if kind in self.retain:
                longest = max(longest, float(self.retain[kind]) * 86400)
            if longest:
                keep[kind] = longest
        return keep


@dataclass
class ServiceConfig:
    cameras: list[CameraConfig]
    http: str | None = None
    token: str | None = None
    mqtt: str | None = None
    recordings: str = "recordings"


#: The kinds of segment ``retain`` names, from the one kept the shortest.
RETAINED_KINDS = ("continuous", "motion", "events")
#: What ``record`` may keep segments around instead of recording continuously (each takes in the
#: next: objects are motion, events are objects).
RECORD_ONLY = ("motion", "objects", "events")
CAMERA_KEYS = [f.name for f in fields(CameraConfig) if f.name != "shapes"]
TOP_KEYS = ["cameras", "defaults", "http", "token", "mqtt", "recordings"]
GIGABYTES = Range("gigabytes", above=0)
DAYS = Range("days", above=0)


def load_config(path: str | Path) -> ServiceConfig:
    """Read and check a cameras file; every mistake is one line naming the file and the place."""
    document = load_document(path, "config file")
    if not isinstance(document, dict):
        raise UserError(f"{path}: expected a mapping with 'cameras'")
    check_keys(document, TOP_KEYS, f"{path}")
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise UserError(f"{path}: defaults: expected a mapping of camera settings")
    check_keys(defaults, [k for k in CAMERA_KEYS if k not in ("name", "source")], f"{path}: defaults")
    cameras = document.get("cameras")
    if not isinstance(cameras, list) or not cameras:
        raise UserError(f"{path}: cameras: expected a list of cameras, each with a name and a source")
    configs = []
    for number, entry in enumerate(cameras, 1):
        where = f"{path}: camera {number}"
        if not isinstance(entry, dict):
            raise UserError(f"{where}: expected a mapping with name and source")
        check_keys(entry, CAMERA_KEYS, where)
        configs.append(camera_config({**defaults, **entry}, where))
    return ServiceConfig(
        cameras=check_names(configs),
        http=_text(document, "http", f"{path}"),
        token=_text(document, "token", f"{path}"),
        mqtt=_text(document, "mqtt", f"{path}"),
        recordings=_text(document, "recordings", f"{path}") or "recordings",
    )


def camera_config(entry: dict, where: str) -> CameraConfig:
    """A checked CameraConfig from one camera's settings (defaults already merged); a value of the
    wrong type or out of range is one line naming the camera and the key."""
    for key in ("name", "source"):
        if entry.get(key) in (None, ""):
            raise UserError(f"{where}: missing '{key}'")
    name = _text(entry, "name", where)
    if not NAME.match(name):
        raise UserError(f"{where}: name {shown(name)}: use letters, digits, '-' and '_' (it is part of URLs and MQTT topics)")
    where = where if where.endswith(f"camera {name}") else f"{where} ({name})"
    config = CameraConfig(
        name=name,
        source=_text(entry, "source", where),
        model=_text(entry, "model", where),
        threshold=_number(entry, "threshold", where, DEFAULT_THRESHOLD, SCORE),
        classes=class_names(entry.get("classes"), where),
        detect_fps=_number(entry, "detect_fps", where, 5.0, RATE),
        motion=_flag(entry, "motion", where),
        loop=_flag(entry, "loop", where),
        record=_record(entry, "record", where),
        pre_capture=_number(entry, "pre_capture", where, 5.0, SECONDS_OR_ZERO),
        post_capture=_number(entry, "post_capture", where, 5.0, SECONDS_OR_ZERO),
        recordings=_text(entry, "recordings", where),
        segment_seconds=_number(entry, "segment_seconds", where, 10.0, SECONDS),
        recordings_max_gb=_number(entry, "recordings_max_gb", where, None, GIGABYTES),
        recordings_max_share=_number(entry, "recordings_max_share", where, None, SHARE),
        recordings_min_free_gb=_number(entry, "recordings_min_free_gb", where, None, Range("gigabytes", low=0)),
        retain=_retain(entry, "retain", where),
        zones=entry.get("zones") or {},
        lines=entry.get("lines") or {},
        # checked now, once (livedroid.analytics.shapes), not when the camera starts
        shapes=shapes_from_document({"zones": entry.get("zones"), "lines": entry.get("lines")}, where),
        privacy=privacy_from_document(entry.get("privacy"), where),
    )
    return config


def _record(entry: dict, key: str, where: str) -> bool | str:
    """true or false, or what to record around: motion, objects, events ("continuous" is true)."""
    value = entry.get(key, False)
    if value is None or isinstance(value, bool):
        return bool(value)
    if value == "continuous":
        return True
    if value in RECORD_ONLY:
        return value
    raise wrong(where, key, f"true, false, or one of {', '.join(RECORD_ONLY)} (only around those)", value)


def _retain(entry: dict, key: str, where: str) -> dict:
    """Days to keep each kind of segment: {continuous: 3, motion: 7, events: 30} (fractions allowed)."""
    value = entry.get(key) or {}
    if not isinstance(value, dict):
        raise wrong(where, key, "days per kind, e.g. {continuous: 3, motion: 7, events: 30}", value)
    check_keys(value, list(RETAINED_KINDS), f"{where}: {key}")
    return {kind: _number(value, kind, f"{where}: {key}", None, DAYS) for kind in value}


def check_names(cameras: list[CameraConfig]) -> list[CameraConfig]:
    duplicate = next((name for name, count in Counter(c.name for c in cameras).items() if count > 1), None)
    if duplicate:
        raise UserError(f"camera name {duplicate!r} is used twice: names label the page, the stats and the MQTT topics")
    return cameras


def _number(entry: dict, key: str, where: str, default: float | None, rule: Range) -> float | None:
    """A number within ``rule`` (livedroid.settings: the command line's ranges), or ``default``."""
    value = entry.get(key)
    if value is None:
        return default
    try:
        return rule.check(value, shown(value))
    except ValueError as error:
        raise UserError(f"{where}: {key}: {error}") from None


def _text(entry: dict, key: str, where: str) -> str | None:
    """A string (a number is taken as written: ``mqtt: 1883``, ``token: 1234``)."""
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise wrong(where, key, "a text", value)
    return str(value)


def _flag(entry: dict, key: str, where: str) -> bool:
    value = entry.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise wrong(where, key, "true or false", value)
    return value
