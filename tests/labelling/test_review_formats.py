"""``livedroid review`` of the exports users bring (#30 item 6): YOLO, CVAT for images 1.1, COCO
and Label Studio exports of the shared raccoon set, corrected through the review API in process,
written back in the export's own format with its original kept, and read by ``prepare`` with the
correction and the frame accepted empty as a background image. Bad exports: the line prepare says."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from livedroid.annotations import Problem
from livedroid.errors import UserError
from livedroid.labelling.exports import ORIGINALS, find_export
from livedroid.labelling.review import Review, make_app, open_folder, start_review
from livedroid.training.dataset.prepare import prepare_dataset, read_annotations
from tests.labelling.test_review import run_review
from tests.training.test_formats import (  # noqa: F401 - raccoon is a fixture
    _yolo_label, assert_same_boxes, boxes_by_image, coco_cvat_default, coco_roboflow_splits, cvat_for_images, label_studio, raccoon,
    yolo_cvat_1_1, yolo_roboflow, yolo_ultralytics,
)

#: Where each export keeps the annotations a correction rewrites (relative to the export folder).
ANNOTATION_FILES = {
    "yolo_ultralytics": "labels/*/*.txt", "yolo_roboflow": "*/labels/*.txt", "cvat_for_images": "annotations.xml",
    "coco_cvat_default": "annotations/instances_default.json", "label_studio": "*.json",
    "yolo_cvat_1_1": "obj_train_data/*.txt", "coco_roboflow_splits": "*/_annotations.coco.json",
}
EXPORTS = [yolo_ultralytics, yolo_roboflow, yolo_cvat_1_1, cvat_for_images, coco_cvat_default, coco_roboflow_splits, label_studio]
NEW_BOX = [12, 14, 90, 80]


def send(review: Review, requests: list[tuple[str, str, object]]) -> list[tuple[int, dict]]:
    """(status, JSON) of each request, sent in order to the review app served in process."""

    async def run() -> list[tuple[int, dict]]:
        async with TestClient(TestServer(make_app(review))) as client:
            answers = []
            for method, path, body in requests:
                response = await client.request(method, path, json=body)
                answers.append((response.status, await response.json(content_type=None)))
            return answers

    return asyncio.run(run())


def export_folder(source: Path) -> Path:
    return source.parent if source.is_file() else source


def snapshot(folder: Path, pattern: str) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.glob(pattern)}


@pytest.mark.parametrize("export", EXPORTS, ids=lambda export: export.__name__)
def test_a_correction_in_an_export_is_written_in_its_format_and_prepare_trains_on_it(raccoon: Path, tmp_path: Path, export) -> None:
    source, images_dir = export(raccoon, tmp_path / "export")
    folder = export_folder(source)
    originals = snapshot(folder, ANNOTATION_FILES[export.__name__])
    review = start_review(*open_folder(folder, images_dir))
    corrected, emptied = review.names[:2]
    before = boxes_by_image(source, images_dir)
    assert before[corrected] and before[emptied]

    frame = send(review, [("GET", f"/api/frames/{corrected}", None)])[0][1]
    kept = [{"label": box["label"], "box": box["box"], "ref": box["ref"]} for box in frame["boxes"][1:]]
    answers = send(review, [
        ("PUT", f"/api/frames/{corrected}", {"boxes": kept + [{"label": "raccoon", "box": NEW_BOX}], "state": "accepted"}),
        ("PUT", f"/api/frames/{emptied}", {"boxes": [], "state": "accepted"}),
        ("PUT", f"/api/frames/{review.names[2]}", {"state": "rejected"}),
    ])
    assert [status for status, _ in answers] == [200, 200, 400]
    assert answers[0][1]["state"] == "edited" and answers[1][1]["state"] == "edited"
    assert "delete the boxes and accept the frame" in answers[2][1]["error"]

    deleted = frame["boxes"][0]
    expected = dict(before, **{emptied: [], corrected: sorted(
        [box for box in before[corrected] if box[1:] != pytest.approx(deleted["box"], abs=0.1)] + [("raccoon", *map(float, NEW_BOX))])})
    assert_same_boxes(boxes_by_image(source, images_dir), expected)  # what prepare reads and keeps
    # the export as it was brought is kept, once
    kept_originals = {path: (folder / ORIGINALS / f"{path.relative_to(folder)}.orig") for path in originals}
    written = [path for path, backup in kept_originals.items() if backup.is_file()]
    assert written and all(kept_originals[path].read_bytes() == originals[path] for path in written)
    # a second review opens the corrected export with the states of the first
    again = start_review(*open_folder(folder, images_dir))
    assert send(again, [("GET", f"/api/frames/{emptied}", None)])[0][1]["boxes"] == []
    assert again.folder.review_states() == {corrected: "edited", emptied: "edited"}


@pytest.mark.slow  # writes TFRecords: TensorFlow's import alone takes seconds
def test_prepare_of_a_reviewed_yolo_export_counts_the_frame_accepted_empty_as_background(raccoon: Path, tmp_path: Path, capsys) -> None:
    source, _ = yolo_ultralytics(raccoon, tmp_path / "export")
    review = start_review(*open_folder(source))
    assert send(review, [("PUT", f"/api/frames/{review.names[0]}", {"boxes": [], "state": "accepted"})])[0][0] == 200
    capsys.readouterr()
    prepared = prepare_dataset(source, tmp_path / "prepared", val_fraction=0.25)
    assert sum(prepared.background.values()) == 1
    assert sum(prepared.images.values()) == len(review.names)
    assert "background" in capsys.readouterr().out


@pytest.mark.parametrize("export", [yolo_roboflow, yolo_cvat_1_1, cvat_for_images, coco_roboflow_splits, label_studio],
                         ids=lambda export: export.__name__)
def test_a_class_added_on_the_page_reaches_the_export(raccoon: Path, tmp_path: Path, export) -> None:
    source, images_dir = export(raccoon, tmp_path / "export")
    review = start_review(*open_folder(export_folder(source), images_dir))
    name = review.names[0]
    answers = send(review, [
        ("POST", "/api/classes", {"name": "dog"}),
        ("PUT", f"/api/frames/{name}", {"boxes": [{"label": "dog", "box": NEW_BOX}], "state": "accepted"}),
    ])
    assert [status for status, _ in answers] == [200, 200]
    assert_same_boxes({name: boxes_by_image(source, images_dir)[name]}, {name: [("dog", *map(float, NEW_BOX))]})
    assert "dog" in [c["name"] for c in start_review(*open_folder(export_folder(source), images_dir)).classes()]


# Bad input: the line prepare says, nothing written -----------------------------------------------


def prepare_says(source: Path, images_dir: Path | None = None) -> str:
    with pytest.raises(UserError) as refused:
        read_annotations(source, images_dir, [])
    return str(refused.value)


@pytest.mark.parametrize("line", ["3 0.5 0.5 0.2 0.2", "0 0.95 0.5 0.2 0.2"], ids=["class-not-in-data-yaml", "past-the-image"])
def test_yolo_labels_prepare_refuses_are_refused_by_review_with_its_line(raccoon: Path, tmp_path: Path, line: str) -> None:
    source = _yolo_label(tmp_path, raccoon, line)
    before = sorted(path for path in source.rglob("*"))
    with pytest.raises(UserError) as refused:
        start_review(*open_folder(source))
    assert str(refused.value) == prepare_says(source)
    assert sorted(path for path in source.rglob("*")) == before


def test_a_label_studio_export_without_its_images_names_where_it_looked_and_images(raccoon: Path, tmp_path: Path) -> None:
    export, images = label_studio(raccoon, tmp_path / "export")
    with pytest.raises(UserError) as refused:
        start_review(*open_folder(export.parent))
    message = str(refused.value)
    assert message == prepare_says(export) and str(export.parent) in message and "--images" in message
    result = run_review(export.parent, "--port", "0", home=tmp_path)  # as typed: one line, exit 2, nothing written
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and lines == [f"livedroid: error: {message}"], result.stderr
    assert sorted(p.name for p in export.parent.iterdir()) == [export.name]
    assert len(start_review(*open_folder(export.parent, images)).names) == len(json.loads(export.read_text()))


def test_problems_prepare_reports_are_the_review_problems(raccoon: Path, tmp_path: Path) -> None:
    """A COCO box of nulls is a located problem in both, the frame still reviewed."""
    source, _ = coco_cvat_default(raccoon, tmp_path / "export")
    path = source / "annotations" / "instances_default.json"
    document = json.loads(path.read_text())
    document["annotations"][0]["bbox"] = [10, 20, None, 50]
    path.write_text(json.dumps(document))
    problems: list[Problem] = []
    read_annotations(source, None, problems)
    review = start_review(*open_folder(source))
    assert [str(p) for p in review.problems] == [str(p) for p in problems] and len(problems) == 1


@pytest.mark.parametrize("command, advice", [
    ("prepare", "; pass the one to use"),
    ("review", ": review opens one export a folder; move the others out"),
])
def test_two_exports_of_one_kind_are_one_line_naming_both(tmp_path: Path, command: str, advice: str) -> None:
    """Copies, or exports of two projects: the user picks, and each command says how."""
    coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 4}], "annotations": [],
            "categories": [{"id": 1, "name": "droid"}]}
    for name in ("first", "second"):
        (tmp_path / f"{name}.json").write_text(json.dumps(coco))
    with pytest.raises(UserError) as refused:
        read_annotations(tmp_path, None, []) if command == "prepare" else find_export(tmp_path)
    assert str(refused.value) == (f"{tmp_path} holds several COCO files ({tmp_path / 'first.json'}, "
                                  f"{tmp_path / 'second.json'}){advice}")
