"""Camera configs: a good file reads back; each mistake is one line naming the place."""

from __future__ import annotations

import textwrap
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


@pytest.mark.parametrize(
    "text, message",
    [
        ("cameras:\n  - {name: a, source: x.mp4, treshold: 0.3}\n", "camera 1: unknown key 'treshold' (did you mean 'threshold'?)"),
        ("camras: []\n", "unknown key 'camras' (did you mean 'cameras'?)"),
        ("defaults: {detect_fsp: 3}\ncameras: [{name: a, source: x}]\n", "defaults: unknown key 'detect_fsp' (did you mean 'detect_fps'?)"),
        ("cameras:\n  - {name: a, source: x}\n  - {name: a, source: y}\n", "camera name 'a' is used twice"),
        ("cameras:\n  - {name: a}\n", "camera 1: missing 'source'"),
        ("cameras:\n  - {name: 'a b', source: x}\n", "name 'a b': use letters, digits"),
        ("cameras:\n  - {name: a, source: x, threshold: 2}\n", "threshold must lie within 0-1"),
        ("cameras:\n  - {name: a, source: x, detect_fps: 0}\n", "detect_fps must be above 0"),
        ("cameras:\n  - {name: a, source: x, zones: {z: [[0, 0], [1, 1], [2]]}}\n", "camera a: zone z: points must be [x, y] pairs"),
        ("cameras: {a: x}\n", "cameras: expected a list of cameras"),
        ("cameras:\n  - {name: a, source: x, recordings_min_free_gb: .nan}\n", "camera 1 (a): recordings_min_free_gb must be a finite number of at least 0"),
        ("cameras:\n  - {name: a, source: x, retain: {continous: 3}}\n", "camera 1 (a): retain: unknown key 'continous' (did you mean 'continuous'?)"),
        ("cameras:\n  - {name: a, source: x, retain: {events: -1}}\n", "retain: events must be a finite number of days above 0, got -1"),
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
