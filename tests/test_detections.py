import numpy as np
import pytest

from livedroid.detections import Detections, box_iou, same_class_iou_matrix

LABELS = {1: "person", 2: "dog", 3: "car"}


def make() -> Detections:
    return Detections.from_normalized(
        np.array([[0.1, 0.2, 0.5, 0.6], [-0.1, 0.5, 0.4, 1.3], [0.0, 0.0, 1.0, 1.0]]),
        np.array([0.9, 0.6, 0.3]),
        np.array([1, 2, 7]),
        width=200,
        height=100,
        labels=LABELS,
    )


def test_from_normalized_converts_yxyx_to_clipped_pixel_xyxy() -> None:
    detections = make()
    np.testing.assert_allclose(detections.xyxy[0], [40, 10, 120, 50])
    np.testing.assert_allclose(detections.xyxy[1], [100, 0, 200, 40])  # clipped to the image
    assert detections.labels == ["person", "dog", "7"]  # unknown ids keep their number


@pytest.mark.parametrize(
    "min_score, classes, limit, expected",
    [
        (0.0, None, None, ["person", "dog", "7"]),
        (0.5, None, None, ["person", "dog"]),
        (0.0, {"dog"}, None, ["dog"]),
        (0.0, None, 2, ["person", "dog"]),
        (0.95, None, None, []),
        (0.0, {"person", "7"}, 1, ["person"]),
    ],
)
def test_select(min_score, classes, limit, expected) -> None:
    assert make().select(min_score, classes, limit).labels == expected


def test_records_hold_pixel_and_normalized_boxes() -> None:
    record = make().to_records(200, 100)[0]
    assert record == {
        "class_id": 1,
        "label": "person",
        "score": 0.9,
        "box": [40.0, 10.0, 120.0, 50.0],
        "box_normalized": [0.2, 0.1, 0.6, 0.5],
    }


def test_empty_detections() -> None:
    assert len(Detections()) == 0
    assert Detections().to_records(10, 10) == []


@pytest.mark.parametrize(
    "box, boxes, expected",
    [
        ([0, 0, 10, 10], [[0, 0, 10, 10]], [1.0]),
        ([0, 0, 10, 10], [[5, 0, 15, 10], [20, 20, 30, 30]], [50 / 150, 0.0]),
        ([0, 0, 10, 10], [[2, 2, 4, 4]], [4 / 100]),
        ([0, 0, 0, 0], [[0, 0, 0, 0]], [0.0]),  # empty boxes never match
    ],
)
def test_box_iou(box, boxes, expected) -> None:
    np.testing.assert_allclose(box_iou(box, boxes), expected)


@pytest.mark.parametrize(
    "arrays",
    [
        dict(xyxy=np.zeros((2, 4)), scores=np.zeros(1), class_ids=np.zeros(2), labels=["a", "b"]),
        dict(xyxy=np.zeros((1, 4)), scores=np.zeros(1), class_ids=np.zeros(1), labels=[]),
        dict(xyxy=np.zeros((1, 2)), scores=np.zeros(1), class_ids=np.zeros(1), labels=["a"]),
    ],
)
def test_mismatched_array_lengths_are_refused_clearly(arrays) -> None:
    with pytest.raises(ValueError, match="needs N boxes"):
        Detections(**arrays)


@pytest.mark.parametrize("class_offset, expected_ids", [(1, [1, 3]), (0, [0, 2])])
def test_object_detection_api_outputs_keep_count_and_apply_the_class_offset(class_offset, expected_ids) -> None:
    boxes = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.1, 0.1, 0.2, 0.2]])
    found = Detections.from_object_detection_api(
        boxes, np.array([0.9, 0.8, 0.7]), np.array([0.0, 2.0, 5.0]), np.array([2.0]),
        width=100, height=50, labels={1: "one"}, class_offset=class_offset,
    )
    assert found.class_ids.tolist() == expected_ids and len(found) == 2
    assert found.xyxy[1].tolist() == [50, 25, 100, 50]


def test_same_class_iou_is_zero_across_classes_and_empty_sides_give_empty_matrices() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 20]], np.float32)
    iou = same_class_iou_matrix(boxes, np.array([1, 2]), boxes, np.array([1, 1]))
    assert iou.tolist() == [[1.0, 0.5], [0.0, 0.0]]
    assert same_class_iou_matrix(np.zeros((0, 4)), np.zeros(0, int), boxes, np.array([1, 1])).shape == (0, 2)
