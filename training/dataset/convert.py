"""``livedroid train convert``: any dataset ``prepare`` reads (a mined and reviewed folder too),
written out as YOLO (Ultralytics) or COCO for the tools users move to, or as a labelImg folder
(VOC) that ``livedroid review`` opens.

The images are checked as ``prepare`` checks them (unusable ones and boxes are reported and left
out, boxes are clipped to the image) and, for YOLO and COCO, split as ``prepare`` splits them
(frames of one video and near-duplicates on one side), into ``images/train`` and ``images/val``;
the format's annotations go beside them. The folder is written aside and moved in place when complete.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from livedroid.annotations import AnnotatedImage, Problem, coco
from livedroid.errors import UserError
from livedroid.labelling.dataset import LabellingFolder
from livedroid.training.dataset import yolo
from livedroid.training.dataset.prepare import _print_problems, read_dataset
from livedroid.training.dataset.split import grouped_split
from livedroid.training.dataset.validate import CheckedImage, validate_images



def write_voc(splits: dict[str, list[tuple[str, CheckedImage]]], label_map: dict[int, str], out_dir: Path) -> None:
    """labelImg's layout, the one ``review`` edits: ``annotations/NAME.xml`` for images already
    written to ``out_dir/images/NAME`` (one folder: ``prepare`` splits it), and the label map."""
    folder = LabellingFolder(out_dir)
    for named in splits.values():
        for name, image in named:
            folder.save_image(AnnotatedImage(image.source, name, image.boxes, width=image.width, height=image.height))
    folder.write_label_map(label_map)


WRITERS = {"yolo": yolo.write_yolo, "coco": coco.write_coco, "voc": write_voc}
#: File suffixes of the formats a checked image is encoded in, the first the one written.
_SUFFIXES = {"jpeg": (".jpg", ".jpeg"), "png": (".png",)}


def convert_dataset(
    sources: list[Path],
    out_dir: Path,
    to: str,
    *,
    label_map_path: Path | None = None,
    aliases: dict[str, str] | None = None,
    match_label_names: bool = False,
    val_fraction: float = 0.2,
    seed: int = 0,
    images_dir: Path | None = None,
) -> dict[str, int]:
    """Write ``sources`` to ``out_dir`` in format ``to``; returns the images written per split."""
    sources, out_dir = [Path(s) for s in sources], Path(out_dir)
    if to not in WRITERS:
        raise UserError(f"--to {to}: expected one of {', '.join(WRITERS)}")
    for folder in sources:
        if not folder.exists():
            raise UserError(f"dataset not found: {folder}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UserError(f"{out_dir} exists and is not empty: pass a new --out folder")
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"--val-fraction must be at least 0 and below 1, got {val_fraction}")
    problems: list[Problem] = []
    annotated, label_map = read_dataset(sources, images_dir, label_map_path, aliases or {}, match_label_names, problems)
    checked = validate_images(annotated, problems)
    _print_problems(problems)
    if not checked:
        raise UserError(f"{', '.join(map(str, sources))}: no usable images left after validation (see the problems above)")
    if to == "voc":  # one folder of frames, as review shows them; the split is prepare's
        grouping, splits = None, {"": _file_names(checked)}
    else:
        train, val, grouping = grouped_split(checked, val_fraction, seed)
        splits = {split: named for split, named in (("train", _file_names(train)), ("val", _file_names(val))) if named}

    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for split, named in splits.items():
        folder = partial / "images" / split
        folder.mkdir(parents=True)
        for name, image in named:
            (folder / name).write_bytes(image.encoded)
    WRITERS[to](splits, label_map, partial)
    if out_dir.exists():
        out_dir.rmdir()  # empty, checked above
    partial.replace(out_dir)

    boxes = Counter(box.label for image in checked for box in image.boxes)
    counts = {split: len(named) for split, named in splits.items()}
    print(f"{out_dir}: {to.upper()}, " + ", ".join(f"{split} {count} images".strip() for split, count in counts.items())
          + f"; {sum(boxes.values())} boxes of {len(label_map)} classes (" + ", ".join(f"{name} {boxes[name]}" for name in label_map.values()) + ")")
    if grouping is not None:
        print(grouping.summary())
    return counts


def _file_names(images: list[CheckedImage]) -> list[tuple[str, CheckedImage]]:
    """A unique file name for each image, its suffix the encoded format's (merged folders may
    hold two ``0001.jpg``; a re-encoded image is a PNG)."""
    named, taken = [], set()
    for image in images:
        stem, suffix = Path(image.filename).stem, Path(image.filename).suffix
        if suffix.lower() not in _SUFFIXES[image.format]:
            suffix = _SUFFIXES[image.format][0]
        name, number = stem + suffix, 1
        while name.lower() in taken:
            number += 1
            name = f"{stem}_{number}{suffix}"
        taken.add(name.lower())
        named.append((name, image))
    return named
