"""The one annotation model and its formats (livedroid.annotations), shared by mine/review and prepare."""

import json
import subprocess
import sys

import numpy as np

from livedroid.annotations import AnnotatedImage, Box, Problem
from livedroid.annotations.coco import coco_json, read_coco
from livedroid.annotations.voc import read_voc_folder
from livedroid.labelling.dataset import LabellingFolder
from livedroid.labels import load_labels
from tests.conftest import REPO


def test_the_labelling_side_imports_without_the_train_extra() -> None:
    """mine and review run in the runtime install: no TensorFlow, no Pillow, nothing of training/."""
    code = (
        "import sys\n"
        "for name in ('PIL', 'tensorflow', 'object_detection', 'matplotlib', 'pycocotools'):\n"
        "    sys.modules[name] = None\n"
        "import livedroid.annotations.voc, livedroid.annotations.coco, livedroid.labelling.review, livedroid.labelling.mining\n"
        "print(sorted(m for m in sys.modules if m.startswith('livedroid.training')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_what_a_labelling_folder_saves_is_what_prepare_reads(tmp_path) -> None:
    """XML, coco.json and label_map.pbtxt written by the folder read back through prepare's readers
    with the same images, boxes (whole pixels, as labelImg keeps them) and classes."""
    import cv2

    folder = LabellingFolder(tmp_path)
    label_map = {1: "R2-D2", 2: "Dad's car"}
    pictures = {
        "a.jpg": [Box("R2-D2", 10.4, 20.6, 50, 60, score=0.91), Box("Dad's car", 1, 2, 30, 40)],
        "empty.jpg": [],  # a background frame
    }
    jpeg = cv2.imencode(".jpg", np.zeros((72, 96, 3), np.uint8))[1].tobytes()
    for name, boxes in pictures.items():
        folder.save_image(AnnotatedImage(name, name, boxes, width=96, height=72), jpeg)
    folder.write_label_map(label_map)
    folder.write_coco()

    assert load_labels(tmp_path / "label_map.pbtxt") == label_map
    problems: list[Problem] = []
    from_voc = {image.filename: image for image in read_voc_folder(tmp_path, problems)}
    from_coco = {image.filename: image for image in read_coco(tmp_path / "coco.json", None, problems)}
    assert not problems
    for read in (from_voc, from_coco):
        assert sorted(read) == ["a.jpg", "empty.jpg"]
        assert read["a.jpg"].image_path == tmp_path / "images" / "a.jpg"
        assert (read["a.jpg"].width, read["a.jpg"].height) == (96, 72)
        assert [(b.label, b.xmin, b.ymin, b.xmax, b.ymax) for b in read["a.jpg"].boxes] == [
            ("R2-D2", 10, 21, 50, 60), ("Dad's car", 1, 2, 30, 40)]
        assert read["empty.jpg"].background


def test_the_coco_writer_leaves_out_labels_the_map_lacks_and_keeps_background_images() -> None:
    images = [("x.jpg", AnnotatedImage("x", "x.jpg", [Box("cat", 1.234, 2, 11.5, 12), Box("dog", 0, 0, 5, 5)], width=20, height=20)),
              ("y.jpg", AnnotatedImage("y", "y.jpg", width=20, height=20))]
    document = json.loads(coco_json(images, {3: "cat"}))
    assert document["categories"] == [{"id": 3, "name": "cat", "supercategory": ""}]
    assert [image["file_name"] for image in document["images"]] == ["x.jpg", "y.jpg"]
    assert document["annotations"] == [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [1.23, 2, 10.27, 10], "area": 102.66, "iscrowd": 0}]
