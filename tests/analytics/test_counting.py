"""Zone and line counts, and their events, for tracked boxes moving along known paths."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from livedroid.analytics import ZoneAnalytics, parse_shape
from livedroid.detections import Detections
from livedroid.frames import Frame
from livedroid.sinks import JsonLinesFile
from fractions import Fraction

IMAGE = np.zeros((200, 400, 3), np.uint8)
FPS = Fraction(1, 10)


def tracked(*boxes: tuple[int, float, float]) -> Detections:
    """Tracked 20-pixel boxes from (track id, x of the bottom centre, y of the bottom centre)."""
    xyxy = np.array([[x - 10, y - 20, x + 10, y] for _, x, y in boxes], np.float32).reshape(-1, 4)
    count = len(boxes)
    return Detections(xyxy, np.full(count, 0.9, np.float32), np.ones(count, np.int32), ["person"] * count,
                      np.array([t for t, *_ in boxes], int))


def play(analytics: ZoneAnalytics, frames: list[Detections]) -> None:
    for index, detections in enumerate(frames):
        analytics.update(detections, Frame(IMAGE, index, pts=index, time_base=FPS))
    analytics.close()


def read(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "unix_time"} for line in path.read_text().splitlines()]


def test_line_counts_each_direction_once_per_crossing(tmp_path: Path) -> None:
    # Line drawn left to right at y = 100: moving down counts "in".
    log = JsonLinesFile(tmp_path / "events.jsonl")
    analytics = ZoneAnalytics([parse_shape("line", "gate=50,100,350,100")], log=log)
    down = [tracked((1, 100, y)) for y in range(60, 160, 10)]  # crosses at y 100 -> 110
    up_outside = [tracked((2, 380, y)) for y in range(160, 60, -10)]  # beside the line's end: not counted
    up = [tracked((3, 200, y)) for y in range(160, 60, -10)]  # on the line at frame 26: counted once past it
    play(analytics, down + up_outside + up)
    assert (analytics.lines[0].crossed_in, analytics.lines[0].crossed_out) == (1, 1)
    assert read(tmp_path / "events.jsonl") == [
        {"event": "cross", "time": 0.5, "frame": 5, "track_id": 1, "label": "person", "line": "gate", "direction": "in"},
        {"event": "cross", "time": 2.7, "frame": 27, "track_id": 3, "label": "person", "line": "gate", "direction": "out"},
    ]
    assert analytics.summary() == ["line gate: 1 in, 1 out", f"events: 2 in {tmp_path / 'events.jsonl'}"]


def test_zone_enter_exit_lost_and_end(tmp_path: Path) -> None:
    log = JsonLinesFile(tmp_path / "events.jsonl")
    # Inertia 1: every frame decides (inertia has its own tests below).
    analytics = ZoneAnalytics([replace(parse_shape("zone", "left=0,0,0.5,0,0.5,1,0,1"), inertia=1)], lost_frames=5, log=log)
    frames = [tracked((1, 150 + 20 * i, 100), (2, 50, 100)) for i in range(5)]  # 1 leaves at x 210
    frames += [tracked((3, 50, 150)) for _ in range(10)]  # 2 vanishes: exits once lost; 3 stays to the end
    play(analytics, frames)
    events = read(tmp_path / "events.jsonl")
    assert [(e["event"], e["track_id"], e["frame"], e.get("dwell_s"), e.get("cause")) for e in events] == [
        ("enter", 1, 0, None, None),
        ("enter", 2, 0, None, None),
        ("exit", 1, 3, 0.3, "left"),
        ("enter", 3, 5, None, None),
        ("exit", 2, 4, 0.4, "lost"),  # told at frame 10, about the frame it was last seen
        ("exit", 3, 14, 0.9, "end"),
    ]
    assert analytics.zones[0].entered == 3 and not analytics.zones[0].inside
    assert (tmp_path / "events.jsonl").exists()  # closed and renamed with the run


def test_class_filter_ignores_other_classes() -> None:
    analytics = ZoneAnalytics([parse_shape("zone", "z=0,0,400,0,400,200,0,200:car")])
    play(analytics, [tracked((1, 50, 50))] * 3)
    assert analytics.zones[0].entered == 0


def test_a_zone_on_the_frames_bottom_edge_counts_each_person_once(tmp_path: Path) -> None:
    """Three people walk up from the bottom of the frame, where their boxes are clipped: their
    feet lie on the zone's bottom edge, then jitter by a pixel or two, and once leave the zone's
    top edge for two frames. Before: the edge counted as outside, 9 enters, each exit 0.1 s after
    its enter."""
    log = JsonLinesFile(tmp_path / "events.jsonl")
    analytics = ZoneAnalytics([parse_shape("zone", "bottom=0,0.5,1,0.5,1,1,0,1")], lost_frames=5, log=log)
    frames = []
    for person in (1, 2, 3):
        feet = [200.0, 200.0, 199.0, 200.0, 198.5, 200.0, 200.0, 199.5] + [180 - 4 * step for step in range(30)]
        feet[14:16] = [99.0, 98.0]  # a two-frame jump of the box over the zone's top edge (y 100)
        frames += [tracked((person, 100 * person, y)) for y in feet] + [tracked()] * 8
    play(analytics, frames)
    events = read(tmp_path / "events.jsonl")
    assert analytics.zones[0].entered == 3
    assert [(e["event"], e["track_id"], e.get("cause")) for e in events] == [
        ("enter", 1, None), ("exit", 1, "left"), ("enter", 2, None), ("exit", 2, "left"),
        ("enter", 3, None), ("exit", 3, "left")]
    assert min(e["dwell_s"] for e in events if e["event"] == "exit") >= 1.0


@pytest.mark.parametrize("inertia, enters", [(1, 3), (2, 2), (3, 1)])
def test_inertia_is_the_frames_it_takes_to_enter_and_to_leave(inertia: int, enters: int) -> None:
    analytics = ZoneAnalytics([replace(parse_shape("zone", "z=0,0,200,0,200,200,0,200"), inertia=inertia)])
    # in for 4 frames, out 2, in 4, out 1, in 4: inertia 2 keeps it in over the 1-frame absence
    xs = [100] * 4 + [300] * 2 + [100] * 4 + [300] + [100] * 4
    play(analytics, [tracked((1, x, 100)) for x in xs])
    assert analytics.zones[0].entered == enters


def test_a_line_crossing_must_go_past_the_min_distance() -> None:
    """A track standing on a line, its box jittering 5 px (under 0.03 x 200 px = 6 px), crosses
    nothing; walking on past it crosses once."""
    analytics = ZoneAnalytics([parse_shape("line", "gate=0,100,400,100")])
    jitter = [96, 104, 97, 105, 95, 103, 96, 104]
    play(analytics, [tracked((1, 200, y)) for y in [80, 90, *jitter, 110, 120]])
    assert (analytics.lines[0].crossed_in, analytics.lines[0].crossed_out) == (1, 0)
    before = ZoneAnalytics([replace(parse_shape("line", "gate=0,100,400,100"), min_distance=0)])
    play(before, [tracked((1, 200, y)) for y in [80, 90, *jitter, 110, 120]])
    assert (before.lines[0].crossed_in, before.lines[0].crossed_out) == (4, 3)


def test_the_events_file_exists_even_without_an_event(tmp_path: Path) -> None:
    """Before: 'events: 0 in FILE' was printed, and no FILE made."""
    log = JsonLinesFile(tmp_path / "events.jsonl")
    analytics = ZoneAnalytics([parse_shape("zone", "z=0,0,10,0,10,10")], log=log)
    play(analytics, [tracked((1, 300, 150))] * 3)
    assert (tmp_path / "events.jsonl").read_text() == ""
    assert analytics.summary()[-1] == f"events: 0 in {tmp_path / 'events.jsonl'}"
