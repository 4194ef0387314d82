"""The deployment-threshold mistakes: each object named right, named as another class or missed;
duplicates; false alarms. One image per row, with its expected outcome."""

from __future__ import annotations

import numpy as np
import pytest

from livedroid.annotations import Box
from livedroid.detections import Detections
from livedroid.training.mistakes import MISSED, format_report, image_mistakes, mistake_report

R2 = Box("R2-D2", 10, 10, 60, 90)
BB = Box("BB-8", 100, 20, 160, 80)


def found(*boxes: tuple[str, float, tuple[float, float, float, float]]) -> Detections:
    names = {"BB-8": 1, "R2-D2": 2}
    return Detections(
        xyxy=np.array([b for _, _, b in boxes], np.float32).reshape(-1, 4),
        scores=np.array([s for _, s, _ in boxes], np.float32),
        class_ids=np.array([names[n] for n, _, _ in boxes], np.int32),
        labels=[n for n, _, _ in boxes],
    )


@pytest.mark.parametrize(
    "truth, detections, named_as, duplicates, false_alarms, clean",
    [
        ([R2], found(("R2-D2", 0.9, (12, 10, 60, 88))), [("R2-D2", "R2-D2")], 0, [], True),
        ([R2], found(("BB-8", 0.9, (12, 10, 60, 88))), [("R2-D2", "BB-8")], 0, [], False),
        ([R2], found(("R2-D2", 0.3, (12, 10, 60, 88))), [("R2-D2", MISSED)], 0, [], False),  # under the threshold
        ([R2], found(("R2-D2", 0.9, (12, 10, 60, 88)), ("R2-D2", 0.7, (10, 14, 58, 90))), [("R2-D2", "R2-D2")], 1, [], False),
        # the right class wins over a better-scored wrong one, which is then a second box on it
        ([R2], found(("BB-8", 0.95, (12, 10, 60, 88)), ("R2-D2", 0.6, (10, 10, 60, 90))), [("R2-D2", "R2-D2")], 1, [], False),
        ([R2, BB], found(("R2-D2", 0.9, (12, 10, 60, 88)), ("R2-D2", 0.8, (200, 10, 260, 80))), [("R2-D2", "R2-D2"), ("BB-8", MISSED)], 0, ["R2-D2"], False),
        ([R2, BB], found(("BB-8", 0.8, (100, 20, 160, 80)), ("R2-D2", 0.9, (10, 10, 60, 90))), [("R2-D2", "R2-D2"), ("BB-8", "BB-8")], 0, [], True),
    ],
)
def test_image_mistakes(truth, detections, named_as, duplicates, false_alarms, clean):
    outcome = image_mistakes(truth, detections, min_score=0.5)
    assert outcome.named_as == named_as
    assert outcome.duplicates == duplicates
    assert outcome.false_alarms == false_alarms
    assert outcome.clean is clean


def test_report_sums_a_confusion_table():
    report, per_image = mistake_report(
        [[R2], [R2], [BB]],
        [found(("BB-8", 0.9, (12, 10, 60, 88))), found(("R2-D2", 0.9, (12, 10, 60, 88)), ("R2-D2", 0.6, (12, 12, 60, 88))), found()],
        ["BB-8", "R2-D2"],
        min_score=0.5,
    )
    assert report.confusion == {"BB-8": {"BB-8": 0, "R2-D2": 0, MISSED: 1}, "R2-D2": {"BB-8": 1, "R2-D2": 1, MISSED: 0}}
    assert (report.images, report.images_objects_right, report.clean_images) == (3, 1, 0)
    assert (report.duplicates, report.duplicated_objects) == (1, 1)
    assert [o.summary() for o in per_image] == ["R2-D2 as BB-8", "1 duplicate", "BB-8 missed"]
    text = format_report(report)
    assert "every object named right: 1/3" in text and "objects boxed twice or more: 1" in text


def test_a_crowded_images_caption_counts_its_mistakes():
    from livedroid.training.mistakes import ImageMistakes

    crowded = ImageMistakes(named_as=[("RBC", MISSED)] * 3 + [("RBC", "RBC"), ("WBC", "RBC")], false_alarms=["RBC", "RBC", "Platelets"])
    assert crowded.summary() == "3 RBC missed, WBC as RBC, 2 false RBC, false Platelets"
    assert crowded.summary().isascii()  # the contact sheet's font draws ASCII only (it drew the arrow as a box)
