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
KEEP_ALL = Selection(0.0)


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
    stage = PrivacyMask(PrivacySettings(frozenset({"person"}), style=style), KEEP_ALL)
    stage.update(detections(("person", 0.9, PERSON), ("car", 0.9, (10, 10, 60, 50))), frame)
    assert detail(region(frame.image, PERSON)) < 0.1 * detail(region(original, PERSON))
    assert np.array_equal(region(frame.image, (10, 10, 60, 50)), region(original, (10, 10, 60, 50)))  # a car stays
    assert np.array_equal(frame.image[:, 250:], original[:, 250:])
    assert stage.summary()[0].startswith(f"privacy: person {dict(blur='blurred', pixelate='pixelated', fill='filled')[style]} in 1 frame")


def test_the_source_buffer_is_never_drawn_into():
    original = textured()
    image = original.copy()
    frame = Frame(image, 0)
    PrivacyMask(PrivacySettings(frozenset({"person"})), KEEP_ALL).update(detections(("person", 0.9, PERSON)), frame)
    assert np.array_equal(image, original) and frame.image is not image


def test_the_box_is_padded_beyond_the_detectors_tight_edge():
    original = textured()
    frame = Frame(original.copy(), 0)
    PrivacyMask(PrivacySettings(frozenset({"person"}), style="fill"), KEEP_ALL).update(detections(("person", 0.9, PERSON)), frame)
    x1, y1, x2, y2 = (int(v) for v in PERSON)
    assert (frame.image[y1 - 5 : y1, x1:x2] == 0).all() and (frame.image[y1:y2, x2 : x2 + 5] == 0).all()


def test_a_box_stays_hidden_for_the_held_frames_after_a_missed_detection():
    stage = PrivacyMask(PrivacySettings(frozenset({"person"}), style="fill"), KEEP_ALL)
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
    stage = PrivacyMask(PrivacySettings(masks=(parse_mask(f"window={points}"),), style="fill"), KEEP_ALL)
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
    stage = PrivacyMask(PrivacySettings(masks=(parse_mask("far=0,0,900,0,900,900"),)), KEEP_ALL)
    with pytest.raises(UserError, match="outside the 320x240 frame"):
        stage.update(detections(), Frame(textured(), 0))


def test_unknown_classes_and_styles_are_refused():
    with pytest.raises(UserError, match="--blur: class persn not in the model's labels"):
        PrivacySettings.from_options("persn", []).check_classes({"person", "car"})
    with pytest.raises(UserError, match="choose blur, pixelate, fill"):
        PrivacySettings.from_options("person", [], style="smudge")


# Through the commands: what users type, in process ------------------------------------------------

SQUARE = (48, 48, 120, 120)  # the tiny detector's red square, on its anchors' grid


@pytest.fixture
def square_clip(tmp_path):
    from tests.conftest import write_clip
    from tests.tiny_detector import red_square_image

    return write_clip(tmp_path / "square.mp4", frames=6, size=(192, 192), fps=10, audio=None,
                      draw=lambda index: red_square_image((192, 192), SQUARE))


def decoded(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_run_burns_the_blurred_class_and_the_mask_into_the_video_and_still_reports_the_box(square_clip, tiny_tflite, tmp_path, capsys):
    from livedroid.cli import main
    from tests.conftest import read_jsonl

    status = main(["run", str(square_clip), "-m", str(tiny_tflite), "-t", "0.9", "--blur", "red-square",
                   "--mask", "corner=0,150,40,150,40,192,0,192", "--privacy-style", "fill",
                   "-o", str(tmp_path / "out.mp4"), "--jsonl", str(tmp_path / "out.jsonl"), "--no-progress"])
    assert status == 0
    records = read_jsonl(tmp_path / "out.jsonl")
    assert all(r["detections"] and r["detections"][0]["label"] == "red-square" for r in records)
    frames = decoded(tmp_path / "out.mp4")
    assert len(frames) == 6
    for frame in frames:
        inside = region(frame, (60, 60, 108, 108))  # inside the square, clear of the drawn box outline
        assert inside.mean() < 30, "the red square still shows"
        assert frame[160:192, 0:30].mean() < 30, "the fixed mask still shows"
        assert frame[10:30, 150:180].mean() == pytest.approx(60, abs=8)  # the background is untouched
    assert "privacy: red-square, mask corner filled in 6 frames (6 detections)" in capsys.readouterr().err


def test_batch_burns_the_blurred_class_into_each_video_and_fingerprints_it(square_clip, tiny_tflite, tmp_path):
    from livedroid.batch import BatchSettings
    from livedroid.cli import main
    from livedroid.engine import EngineSettings

    out = tmp_path / "out"
    assert main(["batch", str(square_clip), "--out", str(out), "-m", str(tiny_tflite), "-t", "0.9",
                 "--blur", "red-square", "--privacy-style", "fill", "--workers", "1", "--no-progress"]) == 0
    for frame in decoded(out / "square-detections.mp4"):
        assert region(frame, (60, 60, 108, 108)).mean() < 30
    plain = BatchSettings(EngineSettings(model=str(tiny_tflite)))
    blurred = EngineSettings(model=str(tiny_tflite), privacy=PrivacySettings(frozenset({"red-square"})))
    assert plain.fingerprint() != BatchSettings(blurred).fingerprint()


@pytest.mark.parametrize(
    "option, message",
    [
        (["--blur", "persn"], "--blur: class persn not in the model's labels"),
        (["--mask", "m=0,0,1,1"], "--mask m: a mask needs at least 3 points"),
        (["--privacy-style", "smudge"], "invalid choice: 'smudge'"),
    ],
)
def test_a_bad_privacy_option_is_one_line_before_any_frame(option, message, square_clip, tmp_path, capsys):
    from livedroid.cli import main

    try:
        status = main(["run", str(square_clip), *option, "-o", str(tmp_path / "out.mp4"), "--no-progress"])
    except SystemExit as exit:  # argparse's own refusals
        status = exit.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out.mp4").exists()
