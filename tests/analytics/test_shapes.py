"""Zones and lines as users write them: parsing, files, and the checks that refuse bad ones."""

from __future__ import annotations

import json
import re
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
