"""Zones and lines as users write them: parsing, files, and the checks that refuse bad ones."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from livedroid.analytics import Shape, check_unique, load_shapes, parse_shape
from livedroid.analytics.shapes import inside_polygon, side_of_line
from livedroid.errors import UserError


@pytest.mark.parametrize(
    "kind, text, expected",
    [
        ("zone", "door=0.1,0.1,0.5,0.1,0.5,0.9", Shape("zone", "door", ((0.1, 0.1), (0.5, 0.1), (0.5, 0.9)))),
        ("zone", "desk=10,10,200,10,200,100:person,dog",
         Shape("zone", "desk", ((10, 10), (200, 10), (200, 100)), frozenset({"person", "dog"}))),
        ("line", "gate=0,240,640,240", Shape("line", "gate", ((0, 240), (640, 240)))),
    ],
)
def test_parse(kind: str, text: str, expected: Shape) -> None:
    assert parse_shape(kind, text) == expected


@pytest.mark.parametrize(
    "kind, text, message",
    [
        ("zone", "door=0,0,1,1", "a zone needs at least 3 points (x,y pairs), got 2"),
        ("line", "gate=5,5,5,5", "the line has zero length"),
        ("line", "gate=0,0,1,1,2,2", "a line needs exactly 2 points"),
        ("zone", "door=0,0,1,1,2", "odd count of numbers"),
        ("zone", "door=a,b,c,d,e,f", "coordinates must be numbers"),
        ("zone", "0,0,1,0,1,1", "expected NAME="),
        ("zone", "door=-1,0,1,0,1,1", "negative coordinate"),
    ],
)
def test_bad_shapes_are_refused(kind: str, text: str, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        parse_shape(kind, text)


def test_fractions_scale_and_pixels_outside_the_frame_are_refused() -> None:
    assert parse_shape("zone", "z=0,0,0.5,0,0.5,1").in_pixels(640, 480).tolist() == [[0, 0], [320, 0], [320, 480]]
    with pytest.raises(UserError, match=r"--line gate: point 700,10 is outside the 640x480 frame"):
        parse_shape("line", "gate=10,10,700,10").in_pixels(640, 480)


def test_unknown_class_and_duplicate_names() -> None:
    with pytest.raises(UserError, match="--zone desk: class wookiee not in the model's labels"):
        parse_shape("zone", "desk=0,0,1,0,1,1:person,wookiee").check_classes({"person", "dog"})
    with pytest.raises(UserError, match="'a' is used twice"):
        check_unique([parse_shape("zone", "a=0,0,1,0,1,1"), parse_shape("line", "a=0,0,1,1")])


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_file_of_zones_and_lines(tmp_path: Path, suffix: str) -> None:
    document = {"zones": {"door": {"points": [[0.1, 0.2], [0.5, 0.2], [0.5, 0.9]], "classes": ["person"]}},
                "lines": {"gate": [[0, 240], [640, 240]]}}
    path = tmp_path / f"areas{suffix}"
    path.write_text(json.dumps(document))  # JSON is valid YAML
    shapes = load_shapes(path)
    assert [(s.kind, s.name, s.classes) for s in shapes] == [("zone", "door", frozenset({"person"})), ("line", "gate", None)]
    path.write_text(json.dumps({"zones": {"door": [[0, 0], [1, 1]]}}))
    with pytest.raises(UserError, match="at least 3 points"):
        load_shapes(path)


def test_geometry() -> None:
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    points = np.array([[5, 5], [15, 5], [-1, 5], [5, 9.9]], float)
    assert inside_polygon(points, square).tolist() == [True, False, False, True]
    # Looking from (0, 0) to (10, 0) on screen (y down), below is to the right.
    assert side_of_line(np.array([[5, 5], [5, -5], [5, 0]], float), np.array([0.0, 0]), np.array([10.0, 0])).tolist() == [1, -1, 0]


def analytics_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "areas.yaml"
    path.write_text(text)
    return path


ZONE = "zones:\n  z: {points: [[0, 0], [1, 0], [1, 1]], KEY: VALUE}\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("zones:\n  - [[0, 0], [1, 0], [1, 1]]\n", "zones: expected a mapping of zone names to [[x, y], …] or {points: …, classes: …}, got [[[0, 0], [1, 0], [1, 1]]]"),
        (ZONE.replace("KEY", "classes").replace("VALUE", "5"), "zones: 'z': classes: expected a list of class names, got 5"),
        (ZONE.replace("KEY", "classes").replace("VALUE", "[[a]]"), "zones: 'z': classes: expected a list of class names, got [['a']]"),
        (ZONE.replace("KEY", "clases").replace("VALUE", "[a]"), "zones: 'z': unknown key 'clases' (did you mean 'classes'?)"),
        (ZONE.replace("KEY", "inertia").replace("VALUE", "0"), "zones: 'z': inertia: expected a whole number of at least 1, got 0"),
        (ZONE.replace("KEY", "inertia").replace("VALUE", "2.5"), "zones: 'z': inertia: expected a whole number of at least 1, got 2.5"),
        (ZONE.replace("KEY", "min_distance").replace("VALUE", "0.1"), "zones: 'z': unknown key 'min_distance' (known: points, classes, inertia)"),
        ("zones:\n  z: [[0, 0], [1, .nan], [1, 1]]\n", "zones: 'z': expected [[x, y], …] pairs of finite numbers, got [[0, 0], [1, nan], [1, 1]]"),
        ("zones:\n  z: [[0, 0], [1, 0], [1, 1]]\ntripwires: {}\n", "unknown key 'tripwires'"),
        ("lines:\n  g: {points: [[0, 0], [1, 1]], min_distance: .inf}\n", "lines: 'g': min_distance: expected a share of the frame's height of at least 0 and below 1, got inf"),
        ("lines:\n  g: [[0, 0], [1, 1], [2, 2]]\n", "lines: 'g': a line needs exactly 2 points"),
        ("- a\n", "expected a mapping with 'zones' and/or 'lines', got ['a']"),
        ("zones: [\n", "not valid YAML"),
    ],
)
def test_every_field_of_an_analytics_file_is_typed(tmp_path: Path, text: str, message: str) -> None:
    """Before: a list of zones, classes: 5 and classes: [[a]] ended in tracebacks; NaN was accepted."""
    with pytest.raises(UserError) as caught:
        load_shapes(analytics_file(tmp_path, text))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_classes_as_one_text_is_a_list_of_one_class(tmp_path: Path) -> None:
    """Before: ``classes: person`` became the letters e, n, o, p, r, s."""
    (zone, line) = load_shapes(analytics_file(
        tmp_path, "zones:\n  z: {points: [[0, 0], [1, 0], [1, 1]], classes: person, inertia: 5}\n"
                  "lines:\n  g: {points: [[0, 0], [1, 1]], classes: 'person, car', min_distance: 0.05}\n"))
    assert (zone.classes, zone.inertia) == (frozenset({"person"}), 5)
    assert (line.classes, line.min_distance) == (frozenset({"person", "car"}), 0.05)


def billion_laughs(levels: int = 9) -> str:
    """555 bytes whose aliases expand to 9**8 (4x10^7) points."""
    lines = ['a0: &a0 [0, 0]']
    lines += [f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]" for level in range(1, levels)]
    return "zones:\n" + "\n".join(f"  {line}" for line in lines) + "\n"


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    """Before: ``--analytics`` grew to gigabytes and ended in MemoryError or a kill."""
    path = analytics_file(tmp_path, billion_laughs())
    assert path.stat().st_size < 600
    began = time.monotonic()
    with pytest.raises(UserError, match="line 2: anchors and aliases"):
        load_shapes(path)
    assert time.monotonic() - began < 1


def test_a_huge_analytics_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = analytics_file(tmp_path, "zones: {}\n" + "# padding\n" * 30_000)
    with pytest.raises(UserError, match="an analytics file is at most 256 KiB"):
        load_shapes(path)


def test_a_nan_point_on_the_command_line_is_refused() -> None:
    with pytest.raises(UserError, match="--zone z: coordinates must be finite numbers"):
        parse_shape("zone", "z=0,0,nan,0,1,1")
