"""The privacy stage: what it hides is gone from the frame every later stage and sink sees."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.pipeline import Selection
from livedroid.privacy import HOLD_FRAMES, PrivacyMask, PrivacySettings, parse_mask

WIDTH, HEIGHT = 320, 240
PERSON = (100.0, 60.0, 180.0, 200.0)


def textured(seed: int = 0) -> np.ndarray:
    """Fine detail everywhere (what makes a face or a number plate readable)."""
    return np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)


def detections(*boxes: tuple[str, float, tuple[float, float, float, float]]) -> Detections:
    return Detections(
        np.array([box for _, _, box in boxes], np.float32).reshape(-1, 4),
        np.array([score for _, score, _ in boxes], np.float32),
        np.array([1 if label == "person" else 3 for label, _, _ in boxes], np.int32),
        [label for label, _, _ in boxes],
    )


def detail(image: np.ndarray) -> float:
    """Laplacian variance: high for readable detail, near 0 once hidden."""
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def region(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    x1, y1, x2, y2 = (int(v) for v in box)
    return image[y1:y2, x1:x2]


@pytest.mark.parametrize("style", ["blur", "pixelate", "fill"])
def test_a_person_box_loses_its_detail_and_the_rest_of_the_frame_is_untouched(style):
    original = textured()
    frame = Frame(original.copy(), 0)
    stage = PrivacyMask(PrivacySettings(frozenset({"person"}), style=style))
    stage.update(detections(("person", 0.9, PERSON), ("car", 0.9, (10, 10, 60, 50))), frame)
    assert detail(region(frame.image, PERSON)) < 0.1 * detail(region(original, PERSON))
    assert np.array_equal(region(frame.image, (10, 10, 60, 50)), region(original, (10, 10, 60, 50)))  # a car stays
    assert np.array_equal(frame.image[:, 250:], original[:, 250:])
    assert stage.summary()[0].startswith(f"privacy: person {dict(blur='blurred', pixelate='pixelated', fill='filled')[style]} in 1 frame")


def test_the_source_buffer_is_never_drawn_into():
    original = textured()
    image = original.copy()
    frame = Frame(image, 0)
    PrivacyMask(PrivacySettings(frozenset({"person"}))).update(detections(("person", 0.9, PERSON)), frame)
    assert np.array_equal(image, original) and frame.image is not image


def test_the_box_is_padded_beyond_the_detectors_tight_edge():
    original = textured()
    frame = Frame(original.copy(), 0)
    PrivacyMask(PrivacySettings(frozenset({"person"}), style="fill")).update(detections(("person", 0.9, PERSON)), frame)
    x1, y1, x2, y2 = (int(v) for v in PERSON)
    assert (frame.image[y1 - 5 : y1, x1:x2] == 0).all() and (frame.image[y1:y2, x2 : x2 + 5] == 0).all()


def test_a_box_stays_hidden_for_the_held_frames_after_a_missed_detection():
    stage = PrivacyMask(PrivacySettings(frozenset({"person"}), style="fill"))
    hidden = []
    for index in range(HOLD_FRAMES + 3):
        frame = Frame(textured(index), index)
        found = detections(("person", 0.9, PERSON)) if index == 0 else detections()
        stage.update(found, frame)
        hidden.append(bool((region(frame.image, PERSON) == 0).all()))
    assert hidden == [True] * (HOLD_FRAMES + 1) + [False] * 2


def test_unsure_boxes_are_hidden_but_only_the_kept_ones_go_on():
    """A person at 0.35 is hidden (privacy errs towards hiding) yet not displayed at -t 0.5."""
    frame = Frame(textured(), 0)
    stage = PrivacyMask(PrivacySettings(frozenset({"person"}), style="fill"), keep=Selection(0.5, {"car"}))
    kept = stage.update(detections(("person", 0.35, PERSON), ("car", 0.8, (10, 10, 60, 50)), ("car", 0.4, (200, 10, 260, 50))), frame)
    assert (region(frame.image, PERSON) == 0).all()
    assert kept.labels == ["car"] and kept.scores.tolist() == pytest.approx([0.8])


def test_the_pipeline_selection_is_widened_to_what_the_stage_hides():
    settings = PrivacySettings(frozenset({"person"}))
    assert settings.widen(Selection(0.5, {"car"}, 100)) == Selection(0.3, {"car", "person"}, 100)
    assert settings.widen(Selection(0.5, None, 100)) == Selection(0.3, None, 100)
    assert PrivacySettings(masks=(parse_mask("a=0,0,1,0,1,1"),)).widen(Selection(0.5, {"car"})) == Selection(0.5, {"car"})


@pytest.mark.parametrize("points", ["0,0,0.5,0,0.5,0.5,0,0.5", "0,0,160,0,160,120,0,120"])
def test_a_fixed_mask_hides_its_polygon_in_fractions_or_pixels(points):
    original = textured()
    frame = Frame(original.copy(), 0)
    stage = PrivacyMask(PrivacySettings(masks=(parse_mask(f"window={points}"),), style="fill"))
    assert len(stage.update(detections(("person", 0.9, PERSON)), frame)) == 1
    assert (frame.image[:119, :159] == 0).all()
    assert np.array_equal(frame.image[130:, 170:], original[130:, 170:])


@pytest.mark.parametrize(
    "text, message",
    [
        ("window=0,0,1,1", "at least 3 points"),
        ("window=0,0,1,0,1,1:person", "takes no classes"),
        ("=0,0,1,0,1,1", "expected NAME=x1,y1"),
        ("window=0,0,-1,0,1,1", "negative coordinate"),
    ],
)
def test_a_bad_mask_is_one_line(text, message):
    with pytest.raises(UserError, match=message):
        parse_mask(text)


def test_a_mask_outside_the_frame_is_refused_when_the_frame_size_is_known():
    stage = PrivacyMask(PrivacySettings(masks=(parse_mask("far=0,0,900,0,900,900"),)))
    with pytest.raises(UserError, match="outside the 320x240 frame"):
        stage.update(detections(), Frame(textured(), 0))


def test_unknown_classes_and_styles_are_refused():
    with pytest.raises(UserError, match="--blur: class persn not in the model's labels"):
        PrivacySettings.from_options("persn", []).check_classes({"person", "car"})
    with pytest.raises(UserError, match="choose blur, pixelate, fill"):
        PrivacySettings.from_options("person", [], style="smudge")
