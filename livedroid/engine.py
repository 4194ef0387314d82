"""One recipe for the engine: the settings every command fills (:class:`EngineSettings`) and the
one function that turns them and a model's detectors into what a :class:`~livedroid.pipeline.Pipeline`
runs (:func:`build_engine`): the region wrappers (``--tiles``, ``--motion``), the selection, and
the stages (privacy, tracker, zones and lines, snapshots).

``run``, ``batch``, ``mine`` and ``bench`` fill the settings from their options
(:meth:`EngineSettings.from_args`), ``serve`` from each camera's YAML
(:meth:`livedroid.service.config.CameraConfig.engine`); the defaults and ranges are those of
:mod:`livedroid.settings`. Heavy modules (OpenCV, the tracker) are imported only when the engine
is built, so that declaring the options keeps ``livedroid --help`` fast.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from livedroid.errors import UserError
from livedroid.privacy import PrivacySettings, privacy_from_args, with_privacy
from livedroid.settings import (
    COUNT, COUNT_OR_ZERO, DEFAULT_DETECT_EVERY, DEFAULT_FULL_EVERY, DEFAULT_MAX_DETECTIONS, DEFAULT_THRESHOLD,
    DEFAULT_TRACK_BUFFER, SCORE, TILE_SIZE, Range,
)
from livedroid.wording import did_you_mean

if TYPE_CHECKING:
    from livedroid.analytics.shapes import Shape
    from livedroid.detectors.base import Detector
    from livedroid.pipeline import Pipeline, Selection
    from livedroid.sinks import Sink
    from livedroid.sinks.jsonl import JsonLinesFile
    from livedroid.sources.base import Source
    from livedroid.stages import Stage

#: The ranges :class:`EngineSettings` checks (the command line checks the same ones while parsing).
RANGES: dict[str, Range] = {
    "threshold": SCORE, "max_detections": COUNT, "threads": COUNT, "batch": COUNT, "workers": COUNT,
    "tile_size": TILE_SIZE, "full_every": COUNT, "detect_every": COUNT, "track_buffer": COUNT_OR_ZERO,
}
#: Settings that change how fast the engine runs, not what it finds: left out of :meth:`EngineSettings.shaping`.
NOT_SHAPING = ("threads", "batch", "workers", "events", "snapshots", "overwrite", "inputs")


@dataclass(frozen=True)
class EngineSettings:
    """What the engine runs and derives; checked when made, so a bad value is one line whichever
    command or file it came from."""

    # the model and how it runs
    model: str | None = None
    backend: str | None = None
    device: str | None = None
    labels: str | None = None
    threads: int | None = None
    batch: int = 1
    workers: int | None = None
    # which detections are kept
    threshold: float = DEFAULT_THRESHOLD
    #: label names as given (checked against the model's labels when the engine is built)
    classes: frozenset[str] | None = None
    max_detections: int = DEFAULT_MAX_DETECTIONS
    # which parts of each frame are inferred
    tiles: bool = False
    tile_size: int | None = None
    motion: bool = False
    full_every: int = DEFAULT_FULL_EVERY
    detect_every: int = DEFAULT_DETECT_EVERY
    # tracking and analytics
    track: bool = False
    track_buffer: int = DEFAULT_TRACK_BUFFER
    shapes: tuple[Shape, ...] = ()
    events: str | None = None
    snapshots: str | None = None
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    # how the events file and snapshots are written
    overwrite: bool = False
    inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name, rule in RANGES.items():
            value = getattr(self, name)
            if value is not None:
                try:
                    rule.check(value)
                except ValueError as error:
                    raise UserError(f"{name.replace('_', ' ')}: {error}") from None
        if self.tiles and self.motion:
            raise UserError("--tiles and --motion cannot be combined yet: choose one")
        if self.motion and self.workers and self.workers > 1:
            raise UserError("--motion needs the frames in order: one inference worker (drop --workers)")
        if self.events and not self.shapes:
            raise UserError("--events records zone and line events: add --zone, --line or --analytics")

    @property
    def tracking(self) -> bool:
        """Zones, lines and snapshots need track ids: they imply ``--track``."""
        return bool(self.track or self.shapes or self.snapshots)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "EngineSettings":
        """The one mapping from command-line options (:mod:`livedroid.commands.options`) to
        settings; an option the command does not declare keeps its default. Zones and lines are
        parsed and checked here, before anything loads."""
        given = vars(args)
        values = {f.name: given[f.name] for f in fields(cls) if given.get(f.name) is not None}
        values["classes"] = _class_option(given.get("classes"))
        values["shapes"] = _shapes(given)
        if "blur" in given:
            values["privacy"] = privacy_from_args(args)
        values["inputs"] = tuple(given.get("source") or given.get("inputs") or ())
        return cls(**values)

    def checked_classes(self, labels: dict[int, str]) -> set[str] | None:
        """The ``--classes`` allow-list, checked against the model's labels (when it has any)."""
        if self.classes is None:
            return None
        unknown = self.classes - set(labels.values())
        if labels and unknown:
            known = list(labels.values())
            suggestion = did_you_mean(sorted(unknown), known)
            raise UserError(
                f"--classes: {', '.join(sorted(unknown))} not in the model's labels"
                + (f"; {suggestion}" if suggestion else f" ({', '.join(known[:12])}{' …' if len(known) > 12 else ''})")
            )
        return set(self.classes)

    def check_labels(self, labels: dict[int, str]) -> set[str] | None:
        """Every class name the settings use (``--classes``, zones and lines, ``--blur``) checked
        against the model's labels; the allow-list is returned."""
        classes = self.checked_classes(labels)
        known = set(labels.values())
        for shape in self.shapes:
            shape.check_classes(known)
        self.privacy.check_classes(known)
        return classes

    def shaping(self) -> dict:
        """The settings that shape what the engine outputs, JSON-ready (``batch`` fingerprints them)."""
        shaping = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in NOT_SHAPING}
        shaping["classes"] = sorted(self.classes) if self.classes is not None else None
        shaping["shapes"] = [_shape_json(shape) for shape in self.shapes]
        privacy = self.privacy
        shaping["privacy"] = {"classes": sorted(privacy.classes), "masks": [_shape_json(m) for m in privacy.masks],
                              "style": privacy.style, "min_score": privacy.min_score, "hold_frames": privacy.hold_frames}
        return shaping


@dataclass
class Engine:
    """The detectors (wrapped for their regions), the selection and the stages one run uses."""

    detectors: list[Detector]
    selection: Selection
    stages: list[Stage]

    def pipeline(self, source: Source, sinks: list[Sink], **options) -> Pipeline:
        """A Pipeline running this engine on ``source``; zones and lines are placed on the
        source's frame size now when it is known, so coordinates outside it fail before any
        frame is read. ``options``: the Pipeline's (batch, progress, max_frames)."""
        from livedroid.analytics import ZoneAnalytics
        from livedroid.pipeline import Pipeline

        if source.size:
            for stage in self.stages:
                if isinstance(stage, ZoneAnalytics):
                    stage.place(*source.size)
        return Pipeline(source, self.detectors, sinks, self.selection, self.stages, **options)


def build_engine(settings: EngineSettings, detectors: list[Detector], *,
                 event_log: JsonLinesFile | None = None) -> Engine:
    """The engine ``settings`` describe around ``detectors`` (equivalent interpreters of one
    model). ``event_log``: where zone and line events go instead of ``settings.events`` (serve's
    event hub). Class names are checked against the model's labels first."""
    from livedroid.pipeline import Selection
    from livedroid.tracking import LOW_SCORE

    classes = settings.check_labels(detectors[0].labels)
    # The tracker sees unconfident detections too: they keep an occluded object's track alive.
    min_score = min(settings.threshold, LOW_SCORE) if settings.tracking else settings.threshold
    selection = Selection(min_score, classes, settings.max_detections)
    stages = _tracking_stages(settings, event_log) if settings.tracking else []
    selection, stages = with_privacy(settings.privacy, selection, stages)
    return Engine(wrap_regions(settings, detectors), selection, stages)


def wrap_regions(settings: EngineSettings, detectors: list[Detector]) -> list[Detector]:
    """The detectors wrapped by ``--tiles`` or ``--motion`` (livedroid/regions/)."""
    if not (settings.tiles or settings.motion):
        return list(detectors)
    from livedroid.regions import MotionGatedDetector, TiledDetector

    if settings.tiles:
        tile = (settings.tile_size, settings.tile_size) if settings.tile_size else None
        return [TiledDetector(detector, tile) for detector in detectors]
    return [MotionGatedDetector(detector, settings.full_every, settings.detect_every, settings.threshold)
            for detector in detectors]


def _tracking_stages(settings: EngineSettings, event_log: JsonLinesFile | None) -> list[Stage]:
    """Tracker, then zones and lines, then snapshots."""
    from livedroid.analytics import Snapshots, ZoneAnalytics
    from livedroid.sinks import JsonLinesFile
    from livedroid.tracking import LOW_SCORE, ByteTracker

    stages: list[Stage] = [ByteTracker(settings.threshold, LOW_SCORE, lost_frames=settings.track_buffer)]
    if settings.shapes:
        if event_log is None and settings.events:
            event_log = JsonLinesFile(settings.events, overwrite=settings.overwrite, inputs=settings.inputs)
        stages.append(ZoneAnalytics(list(settings.shapes), lost_frames=settings.track_buffer, log=event_log))
    if settings.snapshots:
        stages.append(Snapshots(settings.snapshots, lost_frames=settings.track_buffer, overwrite=settings.overwrite))
    return stages


def _class_option(text: str | None) -> frozenset[str] | None:
    """``--classes A,B`` as names (None: every class)."""
    if not text:
        return None
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def _shapes(given: dict) -> tuple[Shape, ...]:
    """The zones and lines of ``--zone``, ``--line`` and ``--analytics``, checked."""
    zones, lines, analytics = given.get("zone") or [], given.get("line") or [], given.get("analytics")
    if not (zones or lines or analytics):
        return ()
    from livedroid.analytics.shapes import check_unique, load_shapes, parse_shape

    shapes = [parse_shape("zone", text) for text in zones] + [parse_shape("line", text) for text in lines]
    if analytics:
        shapes += load_shapes(analytics)
    return tuple(check_unique(shapes))


def _shape_json(shape: Shape) -> list:
    return [shape.kind, shape.name, [list(point) for point in shape.points],
            sorted(shape.classes) if shape.classes is not None else None, shape.inertia, shape.min_distance]
