"""``livedroid train prepare``: read annotations in any supported format, validate them, split
them and write TFRecords, ``label_map.pbtxt`` and ``dataset.json`` (what later steps read)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from livedroid.annotations import AnnotatedImage, Problem, coco, voc
from livedroid.errors import UserError
from livedroid.labelling import dataset as labelling
from livedroid.labelling.exports import locate, one_export
from livedroid.labels import format_label_map, load_labels
from livedroid.training.dataset import csv_labels, cvat, label_studio, tfrecords, yolo
from livedroid.training.dataset.class_names import apply_label_map, normalized
from livedroid.training.dataset.preflight import model_geometry, preflight
from livedroid.training.dataset.split import grouped_split
from livedroid.training.dataset.unlabelled import leave_out_unlabelled
from livedroid.training.dataset.validate import validate_images
from livedroid.training.dataset.writer import STORED_SIDE_PER_INPUT_SIDE, shard_pattern, write_split

DATASET_FILE = "dataset.json"
LABEL_MAP_FILE = "label_map.pbtxt"
PROBLEMS_FILE = "problems.txt"
#: What ``read_annotations`` reads, for the line that refuses anything else.
FORMATS_READ = (
    "a folder 'livedroid mine' wrote, Pascal VOC .xml files (labelImg), COCO .json (also CVAT's annotations/ "
    "and Roboflow's layouts), YOLO (data.yaml with images/ and labels/, Ultralytics or Roboflow; classes.txt or "
    "obj.names beside .txt labels, labelImg or CVAT's YOLO 1.1), CVAT for images 1.1 "
    "annotations.xml, a Label Studio JSON export, a labels .csv or Object Detection API .record files"
)
PROBLEMS_SHOWN_PER_KIND = 8
MIN_IMAGES_PER_CLASS = 2  # one to train on, one to measure on


@dataclass
class PreparedDataset:
    """Where ``prepare`` wrote things, read back by fit, eval and export from ``dataset.json``."""

    folder: Path
    label_map: dict[int, str]
    train_pattern: str
    val_pattern: str
    counts: dict[str, dict[str, int]]  # split → class name → boxes
    images: dict[str, int]  # split → images
    background: dict[str, int]  # split → images without any object (counted in images)
    stored_max_side: int | None = None  # longer side images were capped at (None: as read, older datasets)

    @property
    def label_map_path(self) -> Path:
        return self.folder / LABEL_MAP_FILE

    @classmethod
    def load(cls, folder: str | Path) -> "PreparedDataset":
        folder = Path(folder)
        try:
            data = json.loads((folder / DATASET_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{folder} has no {DATASET_FILE}: run 'livedroid train prepare' first") from None
        return cls(
            folder=folder,
            label_map=load_labels(folder / LABEL_MAP_FILE),
            train_pattern=str(folder / data["train"]["pattern"]),
            val_pattern=str(folder / data["val"]["pattern"]),
            counts={split: data[split]["boxes"] for split in ("train", "val")},
            images={split: data[split]["images"] for split in ("train", "val")},
            background={split: data[split].get("background", 0) for split in ("train", "val")},
            stored_max_side=data.get("stored_max_side"),
        )


def prepare_dataset(
    source: Path | list[Path],
    out_dir: Path,
    *,
    label_map_path: Path | None = None,
    aliases: dict[str, str] | None = None,
    match_label_names: bool = False,
    val_fraction: float = 0.2,
    seed: int = 0,
    images_dir: Path | None = None,
    model_config: Path | None = None,
    max_detections: int = 100,
    dry_run: bool = False,
) -> PreparedDataset | None:
    """Run the whole preparation and print what was done; UserError on anything the user must fix.

    ``source`` is one dataset or several (photos plus mined frames), merged into one. The label
    map is ``label_map_path``, else the first ``label_map.pbtxt`` among the sources, else derived
    from the class names found; every other source's label map must name only its classes.

    The pre-flight (:mod:`~livedroid.training.dataset.preflight`) measures the data against
    ``model_config`` (default: the default template) and ``max_detections`` (the export's); with
    ``dry_run`` it is printed and nothing is written (None is returned).
    """
    sources = [Path(source)] if isinstance(source, (str, Path)) else [Path(s) for s in source]
    out_dir = Path(out_dir)
    for folder in sources:
        if not folder.exists():
            raise UserError(f"dataset not found: {folder}")
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"--val-fraction must be at least 0 and below 1, got {val_fraction}")
    problems: list[Problem] = []
    label_map_path = label_map_path or label_map_of(sources)
    annotated, label_map = read_dataset(sources, images_dir, label_map_path, aliases or {}, match_label_names, problems)
    checked = validate_images(annotated, problems)
    if not checked:
        _print_problems(problems)
        raise UserError(f"{', '.join(map(str, sources))}: no usable images left after validation (see the problems above)")
    where = sources[0] if len(sources) == 1 else Path(" + ".join(map(str, sources)))
    if label_map_path and _written_by_mine(Path(label_map_path)):
        label_map = drop_unboxed_classes(label_map, checked, label_map_path)
    train, val, grouping = grouped_split(checked, val_fraction, seed)
    geometry = model_geometry(model_config)
    flight = preflight(train + val, grouping, problems, geometry, max_detections)
    if dry_run or flight.stop:
        _print_problems(problems)
        print(flight.text())
    if flight.stop:
        raise UserError(f"{where}: {flight.stop}")
    check_split(label_map, train, val, where)
    if dry_run:
        print(f"\ndry run: stopped after the pre-flight; nothing written to {out_dir}")
        return None

    # Written aside and moved in place when complete: an interrupted run leaves no half dataset.
    final_dir, out_dir = out_dir, out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    class_ids = {name: i for i, name in label_map.items()}
    (out_dir / LABEL_MAP_FILE).write_text(format_label_map(label_map), encoding="utf-8")
    summary = {
        "source": str(sources[0]) if len(sources) == 1 else [str(s) for s in sources],
        "val_fraction": val_fraction,
        "seed": seed,
        "groups": grouping.as_dict(),
        "preflight": flight.as_dict(),
        "stored_max_side": (max_side := STORED_SIDE_PER_INPUT_SIDE * max(geometry.width, geometry.height)),
        "downscaled": sum(max(image.width, image.height) > max_side for image in checked),
    }
    for split, images in (("train", train), ("val", val)):
        paths = write_split(images, out_dir, split, class_ids, max_side)
        boxes = Counter(box.label for image in images for box in image.boxes)
        summary[split] = {
            "pattern": shard_pattern(split, len(paths)),
            "images": len(images),
            "background": sum(not image.boxes for image in images),
            "boxes": {name: boxes[name] for name in label_map.values()},
        }
    (out_dir / DATASET_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (out_dir / PROBLEMS_FILE).write_text("".join(f"{p}\n" for p in problems), encoding="utf-8")
    shutil.rmtree(final_dir, ignore_errors=True)
    out_dir.replace(final_dir)

    _print_problems(problems, final_dir / PROBLEMS_FILE)
    prepared = PreparedDataset.load(final_dir)
    print_counts(prepared, len(annotated))
    print(grouping.summary())
    if summary["downscaled"]:
        print(f"stored: {summary['downscaled']} of {len(checked)} images downscaled to {max_side} px on their longer side, "
              f"{STORED_SIDE_PER_INPUT_SIDE}x the model's input (training decodes them faster; boxes scaled with them)")
    print(flight.text())
    return prepared


def read_dataset(
    sources: list[Path],
    images_dir: Path | None,
    label_map_path: Path | None,
    aliases: dict[str, str],
    match_label_names: bool,
    problems: list[Problem],
) -> tuple[list[AnnotatedImage], dict[int, str]]:
    """Read every source (:func:`read_annotations`) and rename their boxes onto one label map:
    ``label_map_path``, else the first ``label_map.pbtxt`` among the sources, else derived."""
    annotated = [image for folder in sources for image in leave_out_unlabelled(folder, read_annotations(folder, images_dir, problems))]
    label_map_path = label_map_path or label_map_of(sources)
    label_map = load_labels(label_map_path) if label_map_path else None
    if label_map is not None:
        check_label_maps(label_map, label_map_path, sources, aliases, match_label_names)
    return annotated, apply_label_map(annotated, label_map, aliases, match_label_names, problems)


def check_label_maps(
    label_map: dict[int, str], chosen: Path, sources: list[Path], aliases: dict[str, str], match_label_names: bool
) -> None:
    """Every source's own label map must name only classes of the one used (after aliases and
    loose matching): merging a folder mined with another model must not add a class silently."""
    known = set(label_map.values())
    loose = {normalized(name) for name in known} if match_label_names else set()
    for folder in sources:
        own = _label_map_beside(folder)
        if own is None or own.resolve() == Path(chosen).resolve():
            continue
        foreign = [
            name for name in load_labels(own).values()
            if name not in known and aliases.get(name) not in known and normalized(name) not in loose
        ]
        if foreign:
            raise UserError(
                f"{own} names {', '.join(sorted(foreign))}, which {chosen} lacks ({', '.join(sorted(known))}): "
                "pass --label-map with every class, --label-alias NAME=LABEL, or leave that folder out"
            )


def drop_unboxed_classes(label_map: dict[int, str], images: list, chosen: Path) -> dict[int, str]:
    """The label map ``mine`` wrote, less the classes no box has (the model's pre-annotations
    named them; the reviewer relabelled or deleted every box), ids renumbered 1..K in order."""
    boxed = {box.label for image in images for box in image.boxes}
    unboxed = [name for name in label_map.values() if name not in boxed]
    if not unboxed or len(unboxed) == len(label_map):
        return label_map  # nothing to drop, or nothing left: check_split says what is wrong
    print(f"{chosen}: no image has a box of {', '.join(unboxed)}: left out of the classes trained")
    kept = [name for _, name in sorted(label_map.items()) if name in boxed]
    return {number: name for number, name in enumerate(kept, start=1)}


def check_split(label_map: dict[int, str], train: list, val: list, source: Path) -> None:
    """One clear line for a dataset a detector cannot be trained and measured on: a label-map
    class without any box, a class too rare to split, or a class missing from either side."""
    def boxes(images: list) -> Counter:
        return Counter(box.label for image in images for box in image.boxes)

    in_train, in_val = boxes(train), boxes(val)
    images_of = Counter(label for image in train + val for label in {box.label for box in image.boxes})
    absent = [name for name in label_map.values() if not images_of[name]]
    if absent:
        raise UserError(
            f"{source}: the label map names {', '.join(absent)} but no image has a box of "
            f"{'it' if len(absent) == 1 else 'them'}: annotate some, or remove {'it' if len(absent) == 1 else 'them'} from the label map"
        )
    too_few = [f"{name} ({images_of[name]})" for name in label_map.values() if images_of[name] < MIN_IMAGES_PER_CLASS]
    if too_few:
        raise UserError(
            f"{source}: too few images to train and validate: {', '.join(too_few)}; each class needs at "
            f"least {MIN_IMAGES_PER_CLASS} images (a few dozen for a useful detector)"
        )
    if val:
        unseen = [name for name in label_map.values() if not in_val[name] or not in_train[name]]
        if unseen:
            raise UserError(
                f"{source}: class {', '.join(unseen)} has no image on one side of the train/validation split "
                "(its images all carry rarer classes too); annotate more images of it, or raise --val-fraction"
            )


#: What to do when a folder holds several exports of one kind (copies, different projects).
PASS_ONE = "; pass the one to use"


def read_annotations(source: Path, images_dir: Path | None, problems: list[Problem]) -> list[AnnotatedImage]:
    """Pick the reader from what ``source`` is or contains (see :data:`FORMATS_READ`)."""
    if source.is_file():
        return _read_file(source, images_dir, problems)
    if (source / labelling.RECORDS).is_file():
        return _read_mined_folder(source, problems)
    kind, files = locate(source) or (None, [])  # the order review looks in too
    if kind == "yolo":
        return yolo.read_yolo(files[0], problems)
    if kind == "cvat":
        return cvat.read_cvat(one_export(source, files, "CVAT", PASS_ONE), images_dir, problems)
    if kind == "coco":
        chosen = files if coco.are_split_files(files) else [one_export(source, files, "COCO", PASS_ONE)]
        return [image for path in chosen for image in coco.read_coco(path, images_dir, problems)]
    if kind == "label-studio":
        return label_studio.read_label_studio(one_export(source, files, "Label Studio", PASS_ONE), images_dir, problems)
    if kind == "voc":
        return voc.read_voc_folder(source, problems)
    if kind == "darknet":
        return yolo.read_darknet(files[0], problems)
    records = tfrecords.find_record_files(source)
    if records:
        return tfrecords.read_records(records)
    if any("labels" in path.relative_to(source).parts[:-1] for path in source.rglob("*.txt")):
        raise UserError(f"{source} has YOLO labels/ but no data.yaml (names:, train:, val:) or classes.txt naming the classes")
    raise UserError(f"no annotations found in {source}: expected {FORMATS_READ}")


def _read_file(source: Path, images_dir: Path | None, problems: list[Problem]) -> list[AnnotatedImage]:
    """A dataset given by its annotation file."""
    if coco.is_coco_json(source):
        return coco.read_coco(source, images_dir, problems)
    if label_studio.is_label_studio_json(source):
        return label_studio.read_label_studio(source, images_dir, problems)
    if yolo.is_data_yaml(source):
        return yolo.read_yolo(source, problems)
    if cvat.is_cvat_xml(source):
        return cvat.read_cvat(source, images_dir, problems)
    if csv_labels.is_labels_csv(source):
        return csv_labels.read_labels_csv(source, images_dir, problems)
    if tfrecords.find_record_files(source):
        return tfrecords.read_records([source])
    raise UserError(f"{source}: not an annotation file livedroid reads; it reads {FORMATS_READ}")


def _read_mined_folder(source: Path, problems: list[Problem]) -> list[AnnotatedImage]:
    """A folder ``livedroid mine`` wrote: its XML files (what ``review`` and labelImg edit; the
    COCO copy may be older when labelImg edited them), each image with the video it came from."""
    folder = labelling.LabellingFolder(source)
    records = {str(r["image"]): r for r in folder.records()}
    annotated = voc.read_voc_folder(source, problems)
    states = folder.review_states()
    for image in annotated:
        record = records.get(Path(image.filename).name, {})
        image.origin = str(record.get("source") or "") or None
        timestamp = record.get("timestamp")
        image.timestamp = float(timestamp) if isinstance(timestamp, (int, float)) else None
        # An empty frame is background once a reviewer accepted it; before, it is the model's silence.
        image.labelled = bool(image.boxes) or states.get(Path(image.filename).name) in labelling.CHECKED
    unreviewed = [image for image in annotated if image.boxes and states.get(Path(image.filename).name) not in labelling.CHECKED]
    if unreviewed:
        print(f"{source}: {len(unreviewed)} of {len(annotated)} mined frames are not reviewed: their boxes are the "
              f"model's own guesses (livedroid review {source})")
    return annotated


def print_counts(prepared: PreparedDataset, images_read: int) -> None:
    """The per-class table printed at the end of ``prepare``."""
    names = list(prepared.label_map.values())
    width = max(len("background"), *(len(n) for n in names))
    print(f"\n{images_read} annotated images read; {sum(prepared.images.values())} written to {prepared.folder}")
    print(f"{'class':<{width}}  {'train':>7}  {'val':>7}")
    for name in names:
        print(f"{name:<{width}}  {prepared.counts['train'][name]:>7}  {prepared.counts['val'][name]:>7}")
    print(f"{'images':<{width}}  {prepared.images['train']:>7}  {prepared.images['val']:>7}")
    if any(prepared.background.values()):
        print(f"{'background':<{width}}  {prepared.background['train']:>7}  {prepared.background['val']:>7}"
              "  (images annotated with no object, counted in images: there any detection is a false alarm)")


def _print_problems(problems: list[Problem], saved_to: Path | None = None) -> None:
    """All problems grouped by action, a few of each shown; the full list is in problems.txt."""
    by_action: dict[str, list[Problem]] = {}
    for problem in problems:
        by_action.setdefault(problem.action, []).append(problem)
    for action, found in by_action.items():
        print(f"{len(found)} × {action}:")
        for problem in found[:PROBLEMS_SHOWN_PER_KIND]:
            print(f"  {problem.where}: {problem.what}")
        if len(found) > PROBLEMS_SHOWN_PER_KIND:
            print(f"  … and {len(found) - PROBLEMS_SHOWN_PER_KIND} more" + (f" (all in {saved_to})" if saved_to else ""))


def label_map_of(sources: list[Path]) -> Path | None:
    """The first ``label_map.pbtxt`` beside or in the sources."""
    return next(filter(None, map(_label_map_beside, sources)), None)


def _written_by_mine(label_map: Path) -> bool:
    return (label_map.parent / labelling.RECORDS).is_file()


def _label_map_beside(source: Path) -> Path | None:
    folder = source if source.is_dir() else source.parent
    found = folder / LABEL_MAP_FILE
    return found if found.is_file() else None
