"""Zones (polygons) and lines as the user gives them, checked and placed on a frame of known size.

Coordinates are pixels, or fractions of the width and height when every number lies within 0–1.
A track's position is the bottom centre of its box: where a person or a car touches the ground.

In a file (``run --analytics``, a camera of ``serve --config``) every field is typed and checked
here, once::

    zones:
      door: {points: [[0.1, 0.2], [0.5, 0.2], [0.5, 0.9]], classes: [person], inertia: 3}
      desk: [[0, 0], [0.5, 0], [0.5, 0.5]]           # points only: every class
    lines:
      gate: {points: [[0, 240], [640, 240]], classes: person, min_distance: 0.02}

``classes`` is a list, or one text with commas (``classes: person`` is the one class person, as
``--classes person`` is). ``inertia``: frames a track must be seen inside a zone to enter it and
outside to leave it; ``min_distance``: how far past a line, as a share of the frame's height, a
track must go for its crossing to count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livedroid.documents import check_keys, class_names, load_document, shown, wrong
from livedroid.errors import UserError
from livedroid.settings import COUNT, DEFAULT_LINE_MIN_DISTANCE, DEFAULT_ZONE_INERTIA, Range


@dataclass(frozen=True)
class Shape:
    """A named zone (3+ points) or line (2 points), optionally for some classes only."""

    kind: str  # "zone" or "line"
    name: str
    points: tuple[tuple[float, float], ...]
    classes: frozenset[str] | None = None
    #: a zone's: frames seen inside to enter, outside to exit
    inertia: int = DEFAULT_ZONE_INERTIA
    #: a line's: how far past it (share of the frame's height) a crossing must go
    min_distance: float = DEFAULT_LINE_MIN_DISTANCE

    @property
    def fractional(self) -> bool:
        return all(0.0 <= v <= 1.0 for point in self.points for v in point)

    def check(self) -> "Shape":
        """Raise a one-line ``UserError`` for a shape that cannot work."""
        where = f"--{self.kind} {self.name}"
        if self.kind == "zone" and len(self.points) < 3:
            raise UserError(f"{where}: a zone needs at least 3 points (x,y pairs), got {len(self.points)}")
        if self.kind == "line" and len(self.points) != 2:
            raise UserError(f"{where}: a line needs exactly 2 points (x1,y1,x2,y2), got {len(self.points)}")
        if self.kind == "line" and self.points[0] == self.points[1]:
            raise UserError(f"{where}: the line has zero length (both ends at {_format(self.points[0])})")
        if not all(math.isfinite(v) for point in self.points for v in point):
            raise UserError(f"{where}: coordinates must be finite numbers")
        if any(v < 0 for point in self.points for v in point):
            raise UserError(f"{where}: negative coordinate; use pixels or 0–1 fractions of the frame")
        return self

    def check_classes(self, known: set[str]) -> None:
        """Refuse class names the model does not have (when it has labels at all)."""
        unknown = (self.classes or set()) - known
        if known and unknown:
            raise UserError(f"--{self.kind} {self.name}: class {', '.join(sorted(unknown))} not in the model's labels")

    def in_pixels(self, width: int, height: int) -> np.ndarray:
        """(K, 2) float pixel points on a ``width`` x ``height`` frame; refuses points outside it."""
        points = np.array(self.points, np.float64)
        if self.fractional:
            return points * (width, height)
        outside = [p for p in self.points if p[0] > width or p[1] > height]
        if outside:
            raise UserError(
                f"--{self.kind} {self.name}: point {_format(outside[0])} is outside the {width}x{height} frame"
            )
        return points


def _format(point: tuple[float, float]) -> str:
    return ",".join(f"{v:g}" for v in point)


def parse_shape(kind: str, text: str) -> Shape:
    """``NAME=x1,y1,x2,y2,…[:CLASS,CLASS]`` (the --zone and --line syntax)."""
    name, equals, rest = text.partition("=")
    if not equals or not name.strip():
        raise UserError(f"--{kind} {text}: expected NAME=x1,y1,x2,y2{',x3,y3,…' if kind == 'zone' else ''}[:CLASS,…]")
    coordinates, _, classes = rest.partition(":")
    try:
        numbers = [float(v) for v in coordinates.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--{kind} {name}: coordinates must be numbers, got {coordinates!r}") from None
    if len(numbers) % 2:
        raise UserError(f"--{kind} {name}: an odd count of numbers ({len(numbers)}); give x,y pairs")
    wanted = frozenset(c.strip() for c in classes.split(",") if c.strip()) or None
    return Shape(kind, name.strip(), tuple(zip(numbers[::2], numbers[1::2])), wanted).check()


#: A line's min_distance: a share of the frame's height, below the whole height.
MIN_DISTANCE = Range("a share of the frame's height", low=0, below=1)
#: What a zone's or a line's mapping may hold.
SHAPE_KEYS = {"zone": ["points", "classes", "inertia"], "line": ["points", "classes", "min_distance"]}


def load_shapes(path: str | Path) -> list[Shape]:
    """Zones and lines from a YAML or JSON file (the module's docstring shows one)."""
    return shapes_from_document(load_document(path, "analytics file"), str(path))


def shapes_from_document(document: object, where: str) -> list[Shape]:
    """Zones and lines from a parsed mapping (a file's, or one camera's in ``livedroid serve``),
    each field typed; every mistake is one line naming ``where``, the section and the shape."""
    if not isinstance(document, dict):
        raise UserError(f"{where}: expected a mapping with 'zones' and/or 'lines', got {shown(document)}")
    check_keys(document, ["zones", "lines"], where)
    shapes = []
    for section, kind in (("zones", "zone"), ("lines", "line")):
        entries = document.get(section)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            raise wrong(where, section, f"a mapping of {kind} names to [[x, y], …] or {{points: …, classes: …}}", entries)
        for name, spec in entries.items():
            shapes.append(_shape_from_entry(kind, name, spec, f"{where}: {section}: {shown(name)}"))
    return check_unique(shapes)


def _shape_from_entry(kind: str, name: object, spec: object, where: str) -> Shape:
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{where}: a {kind} name is a text")
    settings = spec if isinstance(spec, dict) else {"points": spec}
    check_keys(settings, SHAPE_KEYS[kind], where)
    points = settings.get("points")
    if not isinstance(points, list) or not all(
            isinstance(point, list) and len(point) == 2 and all(_finite(v) for v in point) for point in points):
        raise UserError(f"{where}: expected [[x, y], …] pairs of finite numbers, got {shown(points)}")
    classes = class_names(settings.get("classes"), where)
    extra = {}
    for key, rule in (("inertia", COUNT), ("min_distance", MIN_DISTANCE)):
        if settings.get(key) is not None:
            try:
                extra[key] = rule.check(settings[key], shown(settings[key]))
            except ValueError as error:
                raise UserError(f"{where}: {key}: {error}") from None
    shape = Shape(kind, name, tuple((float(x), float(y)) for x, y in points),
                  frozenset(classes) if classes else None, **extra)
    try:
        return shape.check()
    except UserError as error:  # its words without the --zone NAME prefix: where says it
        raise UserError(f"{where}: {str(error).removeprefix(f'--{kind} {name}: ')}") from None


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_unique(shapes: list[Shape]) -> list[Shape]:
    names = [shape.name for shape in shapes]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        raise UserError(f"zone or line name {duplicate!r} is used twice: names label the counts and events")
    return shapes


def anchors(xyxy: np.ndarray) -> np.ndarray:
    """(N, 2) bottom centres of boxes: the positions zones and lines test."""
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], axis=1).astype(np.float64)


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) whether each point lies inside the polygon or on its edge (even-odd rule), vectorized
    over both. The edge counts as inside: a zone drawn to the frame's border holds the boxes the
    picture clips there, whose bottom centre lies exactly on it."""
    x, y = points[:, :1], points[:, 1:2]
    closed = np.concatenate([polygon, polygon[:1]])
    x1, y1, x2, y2 = closed[:-1, 0], closed[:-1, 1], closed[1:, 0], closed[1:, 1]
    spans = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    inside = (np.count_nonzero(spans & (x < crossing_x), axis=1) % 2) == 1
    return inside | (_distance_to_edges(points, closed).min(axis=1) <= ON_EDGE_PIXELS)


#: A point this near a zone's edge is on it (boxes are clipped to the frame in float pixels).
ON_EDGE_PIXELS = 0.5


def _distance_to_edges(points: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """(N, K) distance of each point to each of the K edges of a closed polygon (K+1 points)."""
    start, end = closed[:-1][None], closed[1:][None]
    direction = end - start
    length = np.maximum((direction ** 2).sum(axis=2), 1e-12)
    along = np.clip(((points[:, None] - start) * direction).sum(axis=2) / length, 0, 1)
    nearest = start + along[..., None] * direction
    return np.hypot(*(points[:, None] - nearest).transpose(2, 0, 1))


def side_of_line(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(N,) +1 right of the line looking from ``start`` to ``end`` (on screen), -1 left, 0 on it."""
    direction = end - start
    offset = points - start
    return np.sign(direction[0] * offset[:, 1] - direction[1] * offset[:, 0])


def signed_distance(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(N,) distance in pixels from the infinite line through ``start`` and ``end``: positive to
    its right looking from ``start`` to ``end`` (on screen), negative to its left."""
    direction = end - start
    offset = points - start
    return (direction[0] * offset[:, 1] - direction[1] * offset[:, 0]) / np.hypot(*direction)
