"""Zones (polygons) and lines as the user gives them, checked and placed on a frame of known size.

Coordinates are pixels, or fractions of the width and height when every number lies within 0–1.
A track's position is the bottom centre of its box: where a person or a car touches the ground.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livedroid.errors import UserError


@dataclass(frozen=True)
class Shape:
    """A named zone (3+ points) or line (2 points), optionally for some classes only."""

    kind: str  # "zone" or "line"
    name: str
    points: tuple[tuple[float, float], ...]
    classes: frozenset[str] | None = None

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


def load_shapes(path: str | Path) -> list[Shape]:
    """Zones and lines from a YAML or JSON file::

        zones:
          door: {points: [[0.1, 0.2], [0.5, 0.2], [0.5, 0.9]], classes: [person]}
        lines:
          gate: {points: [[0, 240], [640, 240]]}
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"analytics file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            document = yaml.safe_load(text)
        else:
            document = json.loads(text)
    except Exception as error:  # noqa: BLE001 - any parse error is the user's file
        raise UserError(f"{path}: not valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'} ({str(error).splitlines()[0]})") from None
    return shapes_from_document(document, str(path))


def shapes_from_document(document: object, where: str) -> list[Shape]:
    """Zones and lines from a parsed mapping (a file's, or one camera's in ``livedroid serve``)."""
    if not isinstance(document, dict) or not set(document) <= {"zones", "lines"}:
        raise UserError(f"{where}: expected a mapping with 'zones' and/or 'lines'")
    shapes = []
    for section, kind in (("zones", "zone"), ("lines", "line")):
        for name, spec in (document.get(section) or {}).items():
            spec = spec if isinstance(spec, dict) else {"points": spec}
            try:
                numbers = np.asarray(spec.get("points"), np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise UserError(f"{where}: {kind} {name}: points must be [x, y] pairs") from None
            if numbers.size % 2:
                raise UserError(f"{where}: {kind} {name}: an odd count of numbers ({numbers.size}); give x,y pairs")
            classes = spec.get("classes")
            points = tuple(zip(numbers[::2].tolist(), numbers[1::2].tolist()))
            shapes.append(Shape(kind, str(name), points, frozenset(classes) if classes else None).check())
    return shapes


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
    """(N,) whether each point lies inside the polygon (even-odd rule), vectorized over both."""
    x, y = points[:, :1], points[:, 1:2]
    closed = np.concatenate([polygon, polygon[:1]])
    x1, y1, x2, y2 = closed[:-1, 0], closed[:-1, 1], closed[1:, 0], closed[1:, 1]
    spans = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return (np.count_nonzero(spans & (x < crossing_x), axis=1) % 2) == 1


def side_of_line(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(N,) +1 right of the line looking from ``start`` to ``end`` (on screen), -1 left, 0 on it."""
    direction = end - start
    offset = points - start
    return np.sign(direction[0] * offset[:, 1] - direction[1] * offset[:, 0])
