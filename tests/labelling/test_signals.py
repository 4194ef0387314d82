"""The signals ``mine`` picks frames by, one table per signal."""

from __future__ import annotations

import numpy as np
import pytest

from livedroid.detections import Detections
from livedroid.labelling import signals as sig

PERSON, DOG = 1, 2
NAMES = {PERSON: "person", DOG: "dog"}


def boxes(*rows: tuple) -> Detections:
    """``(x1, y1, x2, y2, score, class_id)`` rows."""
    if not rows:
        return Detections()
    array = np.array(rows, np.float32)
    ids = array[:, 5].astype(int)
    return Detections(array[:, :4], array[:, 4], ids, [NAMES[i] for i in ids])


A = (10, 10, 50, 90, 0.8, PERSON)
A_AS_DOG = (12, 10, 50, 90, 0.8, DOG)
B = (100, 10, 140, 90, 0.8, PERSON)


@pytest.mark.parametrize(
    "score, value, words",
    [
        (0.50, 1.0, "person 0.50, just above 0.5"),
        (0.45, 0.75, "person 0.45, just below 0.5"),
        (0.40, 0.5, "just below"),
        (0.69, 0.05, "just above"),
    ],
)
def test_near_threshold_is_one_at_the_threshold_and_fades_over_the_band(score: float, value: float, words: str) -> None:
    found = sig.FrameSignals()
    sig.near_threshold(boxes((10, 10, 50, 90, score, PERSON)), 0.5, found)
    assert found.values["near_threshold"] == pytest.approx(value, abs=1e-3)
    assert words in found.reasons[0]


@pytest.mark.parametrize(
    "before, now, after, value, words",
    [
        ((A,), (A,), (A,), None, None),  # steady: nothing to learn
        ((A,), (), (A,), 0.5, "person missing between frames"),  # a near miss
        ((), (B,), (), 0.5, "person only in this frame"),  # a blip
        ((A,), (A_AS_DOG,), (A_AS_DOG,), 0.5, "class flips person → dog"),
        ((A, B), (), (A, B), 1.0, "missing between frames"),
    ],
)
def test_flicker_finds_drops_blips_and_class_flips(before, now, after, value, words) -> None:
    found = sig.FrameSignals()
    sig.flicker(boxes(*before), boxes(*now), boxes(*after), found)
    assert found.values.get("flicker") == (None if value is None else pytest.approx(value))
    if words:
        assert words in found.reasons[0]


@pytest.mark.parametrize(
    "frame, other, value, words",
    [
        ((A,), (A,), None, None),
        ((A, B), (A,), 1 / 3, "person not in the mirror view"),
        ((A,), (A, B), 1 / 3, "person only in the mirror view"),
        ((A,), (A_AS_DOG,), 1.0, "not in the mirror view"),  # same place, other class: no match
    ],
)
def test_view_disagreement_is_the_share_of_unconfirmed_boxes(frame, other, value, words) -> None:
    found = sig.FrameSignals()
    sig.view_disagreement(boxes(*frame), boxes(*other), "mirror", found)
    assert found.values.get("mirror_disagrees") == (None if value is None else pytest.approx(value, abs=1e-3))
    if words:
        assert words in found.reasons[0]


def test_mirrored_boxes_land_where_the_object_is_in_the_original() -> None:
    flipped = sig.mirrored(boxes((10, 5, 30, 25, 0.9, PERSON)), width=100)
    np.testing.assert_allclose(flipped.xyxy, [[70, 5, 90, 25]])


def test_near_identical_pictures_hash_close_and_different_ones_far() -> None:
    rng = np.random.default_rng(0)
    scene = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    scene = np.repeat(np.repeat(scene[::8, ::8], 8, axis=0), 8, axis=1)  # blocky: survives the 9x8 thumbnail
    noisy = np.clip(scene.astype(int) + rng.integers(-6, 7, scene.shape), 0, 255).astype(np.uint8)
    other = np.ascontiguousarray(scene[:, ::-1])
    assert sig.hamming(sig.dhash(scene), sig.dhash(noisy)) <= 4
    assert sig.hamming(sig.dhash(scene), sig.dhash(other)) >= 16
    assert 1 - float(sig.thumbnail(scene) @ sig.thumbnail(noisy)) < 0.01
    assert 1 - float(sig.thumbnail(scene) @ sig.thumbnail(other)) > 0.5


def test_boxes_of_classes_outside_the_label_map_drive_no_signal() -> None:
    """A dog scored at the threshold, mirrored away and blinking: a pick for a dog labeller, none
    for a person labeller."""
    dog = (10, 10, 50, 90, 0.5, DOG)
    views = sig.Views(low=boxes(dog), mirrored=boxes(), before=boxes(), after=boxes())
    assert set(sig.frame_signals(views, 0.5, None).values) == {"near_threshold", "mirror_disagrees", "flicker"}
    assert sig.frame_signals(views, 0.5, {"dog"}).total > 2
    assert sig.frame_signals(views, 0.5, {"person"}).values == {}
