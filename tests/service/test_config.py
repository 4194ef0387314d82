"""Camera configs: a good file reads back; each mistake is one line naming the place."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from livedroid.errors import UserError
from livedroid.service import config as config_module
from livedroid.service.config import load_config


def documented_example() -> str:
    """The example file of the config module's docstring: the documentation reads back."""
    block = config_module.__doc__.split("A file looks like::\n", 1)[1].lstrip("\n").split("\n\n")[0]
    return textwrap.dedent(block)


def test_a_good_file_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text(documented_example())
    config = load_config(path)
    door, demo = config.cameras
    assert (config.http, config.mqtt) == ("127.0.0.1:8080", "127.0.0.1:1883")
    assert (door.name, door.classes, door.detect_fps, door.threshold, door.record) == ("door", ["person"], 4.0, 0.4, True)
    assert [(s.kind, s.name) for s in door.shapes] == [("zone", "desk"), ("line", "gate")]
    assert (demo.loop, demo.detect_fps, demo.shapes, demo.motion, door.motion) == (True, 2.0, [], True, False)
    assert (demo.privacy.classes, [m.name for m in demo.privacy.masks], door.privacy.enabled) == ({"person"}, ["window"], False)


@pytest.mark.parametrize(
    "text, message",
    [
        ("cameras:\n  - {name: a, source: x.mp4, treshold: 0.3}\n", "camera 1: unknown key 'treshold' (did you mean 'threshold'?)"),
        ("camras: []\n", "unknown key 'camras' (did you mean 'cameras'?)"),
        ("defaults: {detect_fsp: 3}\ncameras: [{name: a, source: x}]\n", "defaults: unknown key 'detect_fsp' (did you mean 'detect_fps'?)"),
        ("cameras:\n  - {name: a, source: x}\n  - {name: a, source: y}\n", "camera name 'a' is used twice"),
        ("cameras:\n  - {name: a}\n", "camera 1: missing 'source'"),
        ("cameras:\n  - {name: 'a b', source: x}\n", "name 'a b': use letters, digits"),
        ("cameras:\n  - {name: a, source: x, threshold: 2}\n", "camera 1 (a): threshold: expected a score above 0 and below 1, got 2"),
        ("cameras:\n  - {name: a, source: x, detect_fps: 0}\n", "camera 1 (a): detect_fps: expected frames a second above 0, got 0"),
        ("cameras:\n  - {name: a, source: x, zones: {z: [[0, 0], [1, 1], [2]]}}\n", "camera 1 (a): zones: 'z': expected [[x, y], …]"),
        ("cameras: {a: x}\n", "cameras: expected a list of cameras"),
        ("cameras:\n  - {name: a, source: x, recordings_min_free_gb: .nan}\n", "camera 1 (a): recordings_min_free_gb: expected gigabytes of at least 0, got nan"),
        ("cameras:\n  - {name: a, source: x, retain: {continous: 3}}\n", "camera 1 (a): retain: unknown key 'continous' (did you mean 'continuous'?)"),
        ("cameras:\n  - {name: a, source: x, retain: {events: -1}}\n", "camera 1 (a): retain: events: expected days above 0, got -1"),
        ("cameras:\n  - {name: a, source: x, retain: 3}\n", "retain: expected days per kind"),
        ("cameras: [\n", "not valid YAML"),
    ],
)
def test_mistakes_are_one_line_naming_the_place(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


CAMERA = "cameras:\n  - {name: a, source: x, KEY: VALUE}\n"


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("detect_fps", ".nan", "detect_fps: expected frames a second above 0, got nan"),
        ("detect_fps", ".inf", "detect_fps: expected frames a second above 0, got inf"),
        ("detect_fps", "-2", "detect_fps: expected frames a second above 0, got -2"),
        ("detect_fps", "fast", "detect_fps: expected frames a second above 0, got 'fast'"),
        ("detect_fps", "true", "detect_fps: expected frames a second above 0, got True"),
        ("threshold", ".nan", "threshold: expected a score above 0 and below 1, got nan"),
        ("threshold", "[0.5]", "threshold: expected a score above 0 and below 1, got [0.5]"),
        ("segment_seconds", "-.inf", "segment_seconds: expected seconds above 0, got -inf"),
        ("recordings_max_gb", ".nan", "recordings_max_gb: expected gigabytes above 0, got nan"),
        ("recordings_max_gb", "0", "recordings_max_gb: expected gigabytes above 0, got 0"),
        ("recordings_max_share", "1.5", "recordings_max_share: expected a share above 0 and at most 1, got 1.5"),
        ("recordings_max_share", "-.inf", "recordings_max_share: expected a share above 0 and at most 1, got -inf"),
        ("classes", "[[person]]", "classes: expected a list of class names, got [['person']]"),
        ("classes", "{person: 1}", "classes: expected a list of class names, got {'person': 1}"),
        ("zones", "[1, 2]", "zones: expected a mapping of zone names to [[x, y], …]"),
        ("zones", "{z: {points: [[0, 0], [1, 0], [1, 1]], classes: [[person]]}}", "zones: 'z': classes: expected a list of class names"),
        ("zones", "{z: {points: [[0, 0], [1, 0], [1, 1]], clases: [person]}}", "zones: 'z': unknown key 'clases'"),
        ("zones", "{z: [[0, 0], [1, .nan], [1, 1]]}", "zones: 'z': expected [[x, y], …] pairs of finite numbers"),
        ("zones", "{z: 5}", "zones: 'z': expected [[x, y], …] pairs of finite numbers, got 5"),
        ("lines", "{g: {points: [[0, 0], [1, 1]], classes: 7}}", "lines: 'g': classes: expected a list of class names, got 7"),
        ("lines", "[[0, 0], [1, 1]]", "lines: expected a mapping of line names"),
        ("loop", "yes please", "loop: expected true or false, got 'yes please'"),
        ("record", "1", "record: expected true, false, or one of motion, objects, events (only around those), got 1"),
        ("record", "people", "record: expected true, false, or one of motion, objects, events (only around those), got 'people'"),
        ("pre_capture", "-1", "pre_capture: expected seconds of at least 0, got -1"),
        ("post_capture", ".inf", "post_capture: expected seconds of at least 0, got inf"),
        ("motion", "[true]", "motion: expected true or false, got [True]"),
        ("model", "[a, b]", "model: expected a text, got ['a', 'b']"),
        ("recordings", "{a: 1}", "recordings: expected a text, got {'a': 1}"),
    ],
)
def test_every_type_mistake_is_one_line_naming_camera_and_key(tmp_path: Path, key: str, value: str, expected: str) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text(CAMERA.replace("KEY", key).replace("VALUE", value))
    with pytest.raises(UserError) as caught:
        load_config(path)
    assert f"camera 1 (a): {expected}" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name, source", [("[a]", "x"), ("a", "[x]"), ("a", "{x: 1}")])
def test_name_and_source_must_be_text(tmp_path: Path, name: str, source: str) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text(f"cameras:\n  - {{name: {name}, source: {source}}}\n")
    with pytest.raises(UserError, match="expected a text|use letters"):
        load_config(path)


def billion_laughs(levels: int = 9) -> str:
    """The 585-byte bomb of the review: each alias level repeats the one before nine times."""
    lines = ['a0: &a0 "lol"']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    return "defaults:\n  classes:\n" + "\n".join(f"    - {line}" for line in lines) + "\ncameras: [{name: a, source: x}]\n"


@pytest.mark.parametrize("text, line", [
    (billion_laughs(), 3),
    ("cameras:\n  - &cam {name: a, source: x}\n", 2),
    ("defaults: {classes: [person]}\ncameras:\n  - {name: *a6, source: x}\n", 3),
])
def test_yaml_anchors_and_aliases_are_refused_at_once(tmp_path: Path, text: str, line: int) -> None:
    """Before: the bomb ran 79 s to 1.6 GB and MemoryError; ``name: *a6`` made a 72 MB message."""
    path = tmp_path / "cameras.yaml"
    path.write_text(text)
    began = time.monotonic()
    with pytest.raises(UserError) as caught:
        load_config(path)
    assert time.monotonic() - began < 1
    assert f"line {line}: anchors and aliases (& and *) are not allowed" in str(caught.value)
    assert len(str(caught.value)) < 300 and "\n" not in str(caught.value)


def test_a_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras: [{name: a, source: x}]\n" + "# padding\n" * 30_000)
    with pytest.raises(UserError, match="a config file is at most 256 KiB"):
        load_config(path)


def test_a_huge_value_is_shown_shortened(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras:\n  - {name: a, source: x, detect_fps: '" + "9" * 100_000 + "'}\n")
    with pytest.raises(UserError) as caught:
        load_config(path)
    assert "detect_fps: expected frames a second above 0, got '999" in str(caught.value) and len(str(caught.value)) < 300


@pytest.mark.parametrize("value, expected", [("true", True), ("continuous", True), ("false", False), ("objects", "objects"), ("events", "events")])
def test_record_takes_a_flag_or_what_to_record_around(tmp_path: Path, value: str, expected: object) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text(CAMERA.replace("KEY", "record").replace("VALUE", value))
    (camera,) = load_config(path).cameras
    assert camera.record == expected and (camera.pre_capture, camera.post_capture) == (5.0, 5.0)


def test_a_cameras_privacy_reads_back() -> None:
    from livedroid.service.config import camera_config

    camera = camera_config({"name": "door", "source": "0", "privacy": {"classes": "person", "style": "pixelate",
                            "masks": {"window": [[0, 0], [0.2, 0], [0.2, 0.3]]}}}, "cameras.yaml: camera 1")
    assert (camera.privacy.classes, camera.privacy.style) == (frozenset({"person"}), "pixelate")
    assert [(m.kind, m.name, m.points) for m in camera.privacy.masks] == [("mask", "window", ((0, 0), (0.2, 0), (0.2, 0.3)))]
    assert not camera_config({"name": "door", "source": "0"}, "x").privacy.enabled


@pytest.mark.parametrize(
    "privacy, message",
    [
        ("[person]", "privacy: expected a mapping with classes, masks and style, got ['person']"),
        ("{clases: [person]}", "privacy: unknown key 'clases' (did you mean 'classes'?)"),
        ("{style: smudge}", "privacy: style: expected blur or pixelate or fill, got 'smudge'"),
        ("{masks: [[0, 0]]}", "privacy: masks: expected a mapping of mask names to [[x, y], …]"),
        ("{masks: {w: [[0, 0], [1, 0]]}}", "privacy: mask w: a mask needs at least 3 points"),
        ("{masks: {w: [[0, 0], [1, .nan], [1, 1]]}}", "privacy: mask w:"),
        ("{masks: {w: [[0, 0], [1, a], [1, 1]]}}", "privacy: masks: w: expected [[x, y], …] numbers"),
    ],
)
def test_a_privacy_mistake_is_one_line_naming_the_camera(tmp_path: Path, privacy: str, message: str) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text(f"cameras:\n  - name: door\n    source: '0'\n    privacy: {privacy}\n")
    with pytest.raises(UserError, match=None) as error:
        load_config(path)
    assert message in str(error.value) and str(error.value).startswith(f"{path}: camera 1 (door): ")
