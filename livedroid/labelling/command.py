"""``livedroid mine``: the command around :mod:`livedroid.labelling.mining` — checks first, then
mining, then the picks written into the folder in one go (written aside when the folder is new,
so an interrupted first run leaves nothing half-written)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from livedroid.errors import UserError
from livedroid.labelling.dataset import CONTACT_SHEET, RECORDS, LabellingFolder
from livedroid.folder_lock import LOCK_NAME, FolderLock
from livedroid.labelling.mining import (
    ALL_CLASSES_UP_TO, CLASS_IN_USE_FRAMES, CLASS_IN_USE_SHARE, MineSettings, Miner, Seen, check_label_map,
    earlier_picks, label_map_for, pick, write_picks,
)


def command_mine(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _check_out(out, args.source)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)  # the lock lives in it
    try:
        with FolderLock(out, "mine", advice="close that review first (Ctrl-C in its terminal), or give another --out"):
            return _mine(args, out)
    finally:
        if created and not any(out.iterdir()):
            out.rmdir()  # nothing written: no folder left behind


def _mine(args: argparse.Namespace, out: Path) -> int:
    from livedroid.detectors import load_detector
    from livedroid.engine import EngineSettings, build_engine
    from livedroid.models import resolve_model
    from livedroid.sources import ImageSource, open_source

    known = _known_looks(args.known)  # before mining: a wrong folder fails at once
    engine_settings = EngineSettings.from_args(args)
    model_path = resolve_model(engine_settings.model)
    detector = load_detector(model_path, engine_settings.backend, device=engine_settings.device,
                             labels=engine_settings.labels, threads=engine_settings.threads)
    engine = build_engine(engine_settings, [detector])  # --classes checked, --tiles wrapped
    wanted = engine.selection.classes
    tiled = engine.detectors[0] if engine_settings.tiles else None
    folder = LabellingFolder(out)
    existing = check_label_map(folder, detector.labels)
    classes, why = _classes(wanted, existing, detector.labels)

    sources = []
    try:
        for spec in args.source:
            source = open_source(spec, connect_timeout=args.connect_timeout, read_timeout=args.read_timeout)
            sources.append((spec, source))
            if args.all and not isinstance(source, ImageSource):
                raise UserError(f"--all pre-annotates every image of a folder; {spec} is not images (give --count for videos)")
        settings = MineSettings(count=args.count or 50, threshold=args.threshold, classes=classes, min_gap=args.min_gap,
                                mirror=not args.no_mirror, take_all=args.all, max_frames=args.max_frames,
                                progress=not args.no_progress)
        miner = Miner(detector, settings, folder, tiled)
        summary = miner.mine(sources)
    finally:
        for _, source in sources:
            source.close()
    if not summary.frames:
        raise UserError(f"{', '.join(args.source)}: no frames read, nothing to pick (no dataset written)")
    candidates = miner.candidates()
    if classes is None:  # a large model without --classes: the classes the footage shows
        classes = miner.classes_in_use(summary.frames)
        for candidate in candidates:
            candidate.rescore(settings.threshold, classes)
    if not classes:
        raise UserError("the model found no class often enough at -t in the frames read and no --classes were given: "
                        "name the classes to label with --classes A,B")
    earlier = earlier_picks(folder, classes) + known
    picks = candidates if args.all else pick(candidates, settings.count, earlier, settings.min_gap)
    if not picks:  # a rerun with nothing to add is done, not a mistake (as batch's): scripts rerun mine
        print(f"livedroid: nothing new to pick: every frame read is already in {out}" + (" or --known" if args.known else "")
              + f", of the same scene as one there or within --min-gap of one ({out} unchanged)", file=sys.stderr)
        return 130 if summary.interrupted else 0
    label_map = label_map_for(existing, detector.labels, classes)
    summary.picked = picks
    summary.asked = None if args.all else settings.count
    _write(folder, picks, label_map, settings, str(model_path))
    print(f"livedroid: {summary.line(out)}", file=sys.stderr)
    if why:
        print(f"livedroid: classes {', '.join(label_map.values())} ({why})", file=sys.stderr)
    print(f"livedroid: contact sheet {out / CONTACT_SHEET}; review: livedroid review {out}", file=sys.stderr)
    return 130 if summary.interrupted else 0


def _classes(wanted: set[str] | None, existing: dict[int, str], model_labels: dict[int, str]) -> tuple[set[str] | None, str]:
    """The classes to pre-annotate and mine for (None: those the footage shows, known after
    mining), and, without --classes, a few words on where they come from."""
    known = set(model_labels.values())
    in_folder = set(existing.values()) & known
    if wanted:
        return set(wanted) | in_folder, ""
    narrow = "name others with --classes A,B, or add a class on the review page"
    if in_folder:
        return in_folder, f"the folder's label map; {narrow}"
    if len(known) <= ALL_CLASSES_UP_TO:
        return known, "all the model's classes; narrow them with --classes A,B"
    return None, (f"the model's classes seen at -t in at least {CLASS_IN_USE_FRAMES} frames and "
                  f"{CLASS_IN_USE_SHARE:.0%} of those read; {narrow}")


def _check_out(out: Path, sources: list[str]) -> None:
    resolved = out.resolve()
    for spec in sources:
        path = Path(spec)
        if path.is_dir() and (resolved == path.resolve() or path.resolve() in resolved.parents):
            raise UserError(f"--out {out} is inside the source folder {spec}: its picks would be mined next time; "
                            "choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder")
    if out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir()) and not LabellingFolder(out).exists:
        raise UserError(f"--out {out} holds other files and no {RECORDS}: give a new or a mined folder")


def _known_looks(folders: list[str]) -> list[Seen]:
    """Every image under the ``--known`` folders (photos already labelled; their boxes unknown)."""
    from livedroid.sources.images import IMAGE_SUFFIXES

    paths = []
    for spec in folders:
        root = Path(spec)
        if not root.is_dir():
            raise UserError(f"--known {spec}: not a folder")
        found = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not found:
            raise UserError(f"--known {spec}: no images in it")
        paths += found
    return _looks(paths)


def _looks(paths: list[Path]) -> list[Seen]:
    from livedroid.labelling.signals import scene_colours, thumbnail
    from livedroid.sources.images import read_rgb

    looks = []
    for path in paths:
        image = read_rgb(path)
        looks.append(Seen(thumbnail(image), scene_colours(image), None))
    return looks


def _write(folder: LabellingFolder, picks, label_map, settings, model: str) -> None:
    """Into the folder, or, when it is new (it holds only the lock), aside first and then moved in
    with the records last: an interrupted first run leaves no half-written dataset."""
    if folder.exists:
        write_picks(folder, picks, label_map, settings, model)
        return
    final = folder.root
    aside = final.with_name(final.name + ".partial")
    shutil.rmtree(aside, ignore_errors=True)
    write_picks(LabellingFolder(aside), picks, label_map, settings, model)
    for entry in sorted(aside.iterdir(), key=lambda path: path.name == RECORDS):
        entry.replace(final / entry.name)
    aside.rmdir()
