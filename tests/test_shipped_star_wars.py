"""Golden test of the shipped star-wars model (as tensorflow/examples does for its Pi detector):
validation photos it never trained on, through the runtime's TFLite detector at the default
threshold, must give one box per droid, named right, where the annotation puts it."""

from __future__ import annotations

import pytest

from livedroid.detections import box_iou
from livedroid.detectors import load_detector
from livedroid.models import resolve_model
from livedroid.sources.images import read_rgb
from tests.conftest import shared_path

# Validation photos of the seeded split (seed 0) the model card reports on; one droid each.
GOLDEN = ["BB-8_31", "BB-8_53", "BB-8_66", "R2-D2_39", "R2-D2_54", "R2-D2_71"]


@pytest.mark.parametrize("name", GOLDEN)
def test_each_droid_is_found_once_and_named_right(name):
    from livedroid.annotations.voc import parse_voc_xml

    xml = shared_path(f"datasets/star-wars/annotations/{name}.xml")
    root = xml.parent.parent
    (truth,) = parse_voc_xml(xml.read_bytes(), name, xml.parent, root).boxes
    expected = "BB-8" if name.startswith("BB-8") else "R2-D2"  # the dataset's typed names vary
    (found,) = load_detector(resolve_model("star-wars"), threads=2).detect([read_rgb(root / "images" / f"{name}.jpg")])
    kept = found.select(min_score=0.5)
    assert kept.labels == [expected], (kept.labels, kept.scores)
    assert box_iou([truth.xmin, truth.ymin, truth.xmax, truth.ymax], kept.xyxy)[0] > 0.7
