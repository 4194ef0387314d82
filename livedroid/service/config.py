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
        record: true
      - name: demo
        source: clip.mp4                      # a file played as a camera
        loop: true
        detect_fps: 2
        motion: true                          # infer only where something moved

Cameras are a list so that a name used twice is seen (a YAML mapping keeps the last silently).
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from livedroid.analytics import Shape, check_unique, shapes_from_document
from livedroid.errors import UserError

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class CameraConfig:
    """One camera's settings; ``source`` is never shown to users unmasked."""

    name: str
    source: str
    model: str | None = None
    threshold: float = 0.5
    classes: list[str] | None = None
    detect_fps: float = 5.0
    #: infer only where something moved (``run --motion``), on the frames detect_fps passes on
    motion: bool = False
    loop: bool = False
    record: bool = False
    #: where this camera's segments go (default: the file's top-level ``recordings``)
    recordings: str | None = None
    segment_seconds: float = 10.0
    #: the most the folder's segments may hold: the oldest go beyond it (None: no limit)
    recordings_max_gb: float | None = None
    #: the free space the folder's disk keeps: the oldest segments go below it (None: 1 GB or 5 % of the disk)
    recordings_min_free_gb: float | None = None
    #: days to keep each kind of segment: {continuous: 3, motion: 7, events: 30} (a kind not named stays)
    retain: dict = field(default_factory=dict)
    zones: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict)

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

    @property
    def shapes(self) -> list[Shape]:
        return check_unique(shapes_from_document({"zones": self.zones, "lines": self.lines}, f"camera {self.name}"))


@dataclass
class ServiceConfig:
    cameras: list[CameraConfig]
    http: str | None = None
    token: str | None = None
    mqtt: str | None = None
    recordings: str = "recordings"


#: The kinds of segment ``retain`` names, from the one kept the shortest.
RETAINED_KINDS = ("continuous", "motion", "events")
CAMERA_KEYS = [f.name for f in fields(CameraConfig)]
TOP_KEYS = ["cameras", "defaults", "http", "token", "mqtt", "recordings"]


def load_config(path: str | Path) -> ServiceConfig:
    """Read and check a cameras file; every mistake is one line naming the file and the place."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(document, dict):
        raise UserError(f"{path}: expected a mapping with 'cameras'")
    _check_keys(document, TOP_KEYS, f"{path}")
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise UserError(f"{path}: defaults: expected a mapping of camera settings")
    _check_keys(defaults, [k for k in CAMERA_KEYS if k not in ("name", "source")], f"{path}: defaults")
    cameras = document.get("cameras")
    if not isinstance(cameras, list) or not cameras:
        raise UserError(f"{path}: cameras: expected a list of cameras, each with a name and a source")
    configs = []
    for number, entry in enumerate(cameras, 1):
        where = f"{path}: camera {number}"
        if not isinstance(entry, dict):
            raise UserError(f"{where}: expected a mapping with name and source")
        _check_keys(entry, CAMERA_KEYS, where)
        configs.append(camera_config({**defaults, **entry}, where))
    return ServiceConfig(
        cameras=check_names(configs),
        http=_text(document.get("http")),
        token=_text(document.get("token")),
        mqtt=_text(document.get("mqtt")),
        recordings=str(document.get("recordings") or "recordings"),
    )


def camera_config(entry: dict, where: str) -> CameraConfig:
    """A checked CameraConfig from one camera's settings (defaults already merged)."""
    for key in ("name", "source"):
        if not entry.get(key):
            raise UserError(f"{where}: missing '{key}'")
    name = str(entry["name"])
    if not NAME.match(name):
        raise UserError(f"{where}: name {name!r}: use letters, digits, '-' and '_' (it is part of URLs and MQTT topics)")
    try:
        config = CameraConfig(
            name=name,
            source=str(entry["source"]),
            model=_text(entry.get("model")),
            threshold=float(entry.get("threshold", 0.5)),
            classes=_classes(entry.get("classes")),
            detect_fps=float(entry.get("detect_fps", 5.0)),
            motion=bool(entry.get("motion", False)),
            loop=bool(entry.get("loop", False)),
            record=bool(entry.get("record", False)),
            recordings=_text(entry.get("recordings")),
            segment_seconds=float(entry.get("segment_seconds", 10.0)),
            recordings_max_gb=_optional_number(entry, "recordings_max_gb"),
            recordings_min_free_gb=_optional_number(entry, "recordings_min_free_gb"),
            retain=entry.get("retain") or {},
            zones=entry.get("zones") or {},
            lines=entry.get("lines") or {},
        )
    except (TypeError, ValueError) as error:
        raise UserError(f"{where} ({name}): {error}") from None
    if not 0 <= config.threshold <= 1:
        raise UserError(f"{where} ({name}): threshold must lie within 0-1, got {config.threshold:g}")
    if config.detect_fps <= 0:
        raise UserError(f"{where} ({name}): detect_fps must be above 0, got {config.detect_fps:g}")
    if config.segment_seconds <= 0:
        raise UserError(f"{where} ({name}): segment_seconds must be above 0, got {config.segment_seconds:g}")
    _check_recording_keys(config, f"{where} ({name})")
    config.shapes  # noqa: B018 - bad zones and lines fail now, not when the camera starts
    return config


def _check_recording_keys(config: CameraConfig, where: str) -> None:
    """The recorder's keys (retention), checked in one place."""
    for key, zero_ok in (("recordings_max_gb", False), ("recordings_min_free_gb", True)):
        value = getattr(config, key)
        if value is not None and not (math.isfinite(value) and (value >= 0 if zero_ok else value > 0)):
            raise UserError(f"{where}: {key} must be a finite number {'of at least' if zero_ok else 'above'} 0, got {value:g}")
    if not isinstance(config.retain, dict):
        raise UserError(f"{where}: retain: expected days per kind, e.g. {{continuous: 3, motion: 7, events: 30}}")
    _check_keys(config.retain, list(RETAINED_KINDS), f"{where}: retain")
    for kind, days in config.retain.items():
        if isinstance(days, bool) or not isinstance(days, (int, float)) or not math.isfinite(days) or days <= 0:
            raise UserError(f"{where}: retain: {kind} must be a finite number of days above 0, got {days!r}"[:300])


def _optional_number(entry: dict, key: str) -> float | None:
    return None if entry.get(key) is None else float(entry[key])


def check_names(cameras: list[CameraConfig]) -> list[CameraConfig]:
    duplicate = next((name for name, count in Counter(c.name for c in cameras).items() if count > 1), None)
    if duplicate:
        raise UserError(f"camera name {duplicate!r} is used twice: names label the page, the stats and the MQTT topics")
    return cameras


def _check_keys(mapping: dict, known: list[str], where: str) -> None:
    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"
            raise UserError(f"{where}: unknown key '{key}'{hint}")


def _classes(value: object) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    return [str(c).strip() for c in value if str(c).strip()]


def _text(value: object) -> str | None:
    return None if value is None else str(value)
