"""Zone occupancy and line crossings per track, reported as events (enter, exit, cross).

A track enters a zone when its position (the bottom centre of its box) has been seen inside for
the zone's ``inertia`` frames in a row, and exits when it has been seen outside as long, when it
is lost (not seen for ``lost_frames`` frames: the exit then carries the time it was last seen), or
when the run ends (Ctrl-C too): every enter has its exit. Inertia is what a person counts: feet
on a zone's edge (a zone along the frame's bottom, where boxes are clipped) flicker in and out
from frame to frame, and each flicker would be an enter and an exit (Frigate's zones have the same
``inertia``). An event carries the frame that decided it, so the log stays in time order; the
dwell of an exit runs from the first frame inside to the first outside.

A line counts a track "in" when it crosses from the left of the line to its right, looking from
its first point to its second (a line drawn left to right counts downward motion "in"), and
"out" the other way. A track's side changes only once it is ``min_distance`` (a share of the
frame's height) past the line: one standing on it, its box jittering, crosses nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from livedroid.analytics.shapes import Shape, anchors, inside_polygon, side_of_line, signed_distance
from livedroid.annotate import BoxAnnotator, place_label
from livedroid.detections import Detections
from livedroid.frames import Frame
from livedroid.settings import DEFAULT_TRACK_BUFFER
from livedroid.sinks.jsonl import JsonLinesFile
from livedroid.stages import Stage

ZONE_COLOUR = (255, 200, 0)
LINE_COLOUR = (0, 255, 255)


@dataclass
class Sighting:
    """Where and when a track was last seen."""

    frame: int
    time: float | None
    label: str
    position: np.ndarray


@dataclass
class ZoneCount:
    shape: Shape
    polygon: np.ndarray | None = None  # pixels, once the frame size is known
    inside: dict[int, Sighting] = field(default_factory=dict)  # track -> when it was first seen inside
    #: track -> frames in a row it was seen on the other side, and the first of them
    streaks: dict[int, tuple[int, Sighting]] = field(default_factory=dict)
    entered: int = 0


@dataclass
class LineCount:
    shape: Shape
    ends: np.ndarray | None = None
    min_pixels: float = 0.0  # min_distance on this frame
    sides: dict[int, tuple[float, np.ndarray]] = field(default_factory=dict)  # track -> side, last position on it
    crossed_in: int = 0
    crossed_out: int = 0


class ZoneAnalytics(Stage):
    """Counts tracked detections in zones and across lines; events go to ``log`` when given."""

    def __init__(self, shapes: list[Shape], *, lost_frames: int = DEFAULT_TRACK_BUFFER, log: JsonLinesFile | None = None) -> None:
        self.zones = [ZoneCount(s) for s in shapes if s.kind == "zone"]
        self.lines = [LineCount(s) for s in shapes if s.kind == "line"]
        self.lost_frames = lost_frames
        self.log = log
        self._size: tuple[int, int] | None = None
        self._last_seen: dict[int, Sighting] = {}
        self._labelled = Detections()  # this frame's boxes, whose labels the counts must not hide

    def place(self, width: int, height: int) -> None:
        """Put the shapes on a ``width`` x ``height`` frame (refuses points outside it)."""
        if self._size == (width, height):
            return
        for zone in self.zones:
            zone.polygon = zone.shape.in_pixels(width, height)
        for line in self.lines:
            line.ends = line.shape.in_pixels(width, height)
            line.min_pixels = line.shape.min_distance * height
        self._size = (width, height)

    def update(self, detections: Detections, frame: Frame) -> Detections:
        if detections.tracker_id is None:
            raise ValueError("zones and lines need tracked detections: put the tracker before them")
        if self.log:
            self.log.start()  # the events file exists from the first frame, even if no event comes
        self.place(*frame.size)
        now = frame.timestamp
        positions = anchors(detections.xyxy)
        tracks = detections.tracker_id.tolist()
        for track, label, position in zip(tracks, detections.labels, positions):
            self._last_seen[track] = Sighting(frame.index, now, label, position)
        for zone in self.zones:
            self._count_zone(zone, tracks, detections.labels, positions)
        for line in self.lines:
            self._count_line(line, tracks, detections.labels, positions)
        self._end_lost(frame.index)
        self._labelled = detections
        return detections

    def _wanted(self, shape: Shape, labels: list[str]) -> np.ndarray:
        return np.array([shape.classes is None or label in shape.classes for label in labels], bool)

    def _count_zone(self, zone: ZoneCount, tracks: list[int], labels: list[str], positions: np.ndarray) -> None:
        inside = inside_polygon(positions, zone.polygon) & self._wanted(zone.shape, labels) if tracks else []
        for track, now_inside in zip(tracks, inside):
            seen = self._last_seen[track]
            if now_inside == (track in zone.inside):
                zone.streaks.pop(track, None)
                continue
            count, first = zone.streaks.get(track, (0, seen))
            if count + 1 < zone.shape.inertia:
                zone.streaks[track] = (count + 1, first)
                continue
            zone.streaks.pop(track, None)
            if now_inside:
                zone.inside[track] = first
                zone.entered += 1
                self._emit("enter", seen, track, zone=zone.shape.name)
            else:
                self._exit(zone, track, seen, "left", left_at=first)

    def _count_line(self, line: LineCount, tracks: list[int], labels: list[str], positions: np.ndarray) -> None:
        if not tracks:
            return
        start, end = line.ends
        distances = signed_distance(positions, start, end)
        wanted = self._wanted(line.shape, labels)
        for track, distance, position, keep in zip(tracks, distances.tolist(), positions, wanted):
            if not keep or abs(distance) <= line.min_pixels or distance == 0:
                continue  # on the line, or too near it to tell a side
            side = 1.0 if distance > 0 else -1.0
            before = line.sides.get(track)
            line.sides[track] = (side, position)
            if before is None or before[0] == side:
                continue
            # The move since it was last clear of the line on the other side crossed the infinite
            # line; it counts if it passed between the line's ends.
            ends_side = side_of_line(np.stack([start, end]), before[1], position)
            if ends_side[0] * ends_side[1] > 0:
                continue
            direction = "in" if side > 0 else "out"
            if direction == "in":
                line.crossed_in += 1
            else:
                line.crossed_out += 1
            self._emit("cross", self._last_seen[track], track, line=line.shape.name, direction=direction)

    def _exit(self, zone: ZoneCount, track: int, seen: Sighting, cause: str, left_at: Sighting | None = None) -> None:
        """The exit event, stamped ``seen``; its dwell runs from the first frame seen inside to
        the first seen outside (``left_at``), or to the last seen for a track lost or at the end."""
        entered = zone.inside.pop(track)
        until = left_at or seen
        dwell = None if until.time is None or entered.time is None else round(until.time - entered.time, 3)
        self._emit("exit", seen, track, zone=zone.shape.name, dwell_s=dwell, cause=cause)

    def _end_lost(self, index: int) -> None:
        """Tracks not seen for ``lost_frames`` frames leave every zone, at the time last seen."""
        lost = [t for t, seen in self._last_seen.items() if index - seen.frame > self.lost_frames]
        for track in lost:
            self._forget(track, "lost")

    def _forget(self, track: int, cause: str) -> None:
        seen = self._last_seen.pop(track)
        for zone in self.zones:
            zone.streaks.pop(track, None)
            if track in zone.inside:
                self._exit(zone, track, seen, cause)
        for line in self.lines:
            line.sides.pop(track, None)

    def _emit(self, kind: str, seen: Sighting, track: int, **where: object) -> None:
        event = {
            "event": kind,
            "time": None if seen.time is None else round(seen.time, 3),
            "frame": seen.frame,
            "track_id": track,
            "label": seen.label,
            **where,
            "unix_time": round(time.time(), 3),
        }
        if self.log:
            self.log.write(event)

    def close(self, complete: bool = True) -> None:
        """The run ended: tracks still inside a zone exit now (cause "end"), so every enter has its exit."""
        for track in list(self._last_seen):
            self._forget(track, "end")
        if self.log:
            self.log.close(complete)

    def draw(self, scene: np.ndarray) -> None:
        """The zones and lines with their counts; each count's label goes where it hides no box's
        label (at one of its shape's corners or ends, or the line's middle)."""
        thickness = max(1, round(min(scene.shape[:2]) / 300))
        taken = BoxAnnotator().label_rects(scene.shape, self._labelled)
        for zone in self.zones:
            if zone.polygon is not None:
                cv2.polylines(scene, [zone.polygon.round().astype(np.int32)], True, ZONE_COLOUR, thickness, cv2.LINE_AA)
                place_label(scene, f"{zone.shape.name}: {len(zone.inside)} in, {zone.entered} entered",
                            zone.polygon.tolist(), ZONE_COLOUR, taken)
        for line in self.lines:
            if line.ends is not None:
                start, end = line.ends.round().astype(int).tolist()
                cv2.arrowedLine(scene, start, end, LINE_COLOUR, thickness, cv2.LINE_AA, tipLength=0.03)
                place_label(scene, f"{line.shape.name}: in {line.crossed_in} out {line.crossed_out}",
                            [*line.ends.tolist(), line.ends.mean(axis=0).tolist()], LINE_COLOUR, taken)

    def summary(self) -> list[str]:
        return [f"zone {z.shape.name}: {z.entered} entered" for z in self.zones] + [
            f"line {line.shape.name}: {line.crossed_in} in, {line.crossed_out} out" for line in self.lines
        ] + ([f"events: {self.log.count} in {self.log.path}"] if self.log else [])

