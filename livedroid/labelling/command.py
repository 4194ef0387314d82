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
from livedroid.labelling.mining import MineSettings, Miner, check_label_map, label_map_for, pick, write_picks


def command_mine(args: argparse.Namespace, class_names, regions) -> int:
    """``class_names(option, labels)`` and ``regions(args, detectors)`` are ``run``'s own checks
    of ``--classes`` and ``--tiles``, passed in by the command line."""
    from livedroid.detectors import load_detector
    from livedroid.models import resolve_model
    from livedroid.sources import ImageSource, open_source

    if args.count is not None and args.count < 1:
        raise UserError(f"--count {args.count}: give 1 or more frames to pick")
    if not 0.0 < args.threshold < 1.0:
        raise UserError(f"-t {args.threshold}: give a score between 0 and 1")
    if args.min_gap < 0:
        raise UserError(f"--min-gap {args.min_gap}: give 0 or more seconds")
    out = Path(args.out)
    _check_out(out, args.source)
    known = _known_looks(args.known)  # before mining: a wrong folder fails at once
    model_path = resolve_model(args.model)
    detector = load_detector(model_path, args.backend, device=args.device, labels=args.labels, threads=args.threads)
    wanted = class_names(args.classes, detector.labels)
    tiled = regions(args, [detector])[0] if args.tiles else None
    folder = LabellingFolder(out)
    existing = check_label_map(folder, detector.labels, wanted)

    sources = []
    try:
        for spec in args.source:
            source = open_source(spec, connect_timeout=args.connect_timeout, read_timeout=args.read_timeout)
            sources.append((spec, source))
            if args.all and not isinstance(source, ImageSource):
                raise UserError(f"--all pre-annotates every image of a folder; {spec} is not images (give --count for videos)")
        settings = MineSettings(count=args.count or 50, threshold=args.threshold, classes=wanted, min_gap=args.min_gap,
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
    earlier = _earlier_picks(folder) + known
    picks = candidates if args.all else pick(candidates, settings.count, earlier, settings.min_gap)
    if not picks:
        raise UserError(f"every frame read is already in {out}" + (" or --known" if args.known else "") + " or a near-duplicate of one there: nothing new to pick")
    label_map = label_map_for(picks, existing, detector.labels, wanted)
    if not label_map:
        raise UserError("the model found nothing at -t in the picked frames and no --classes were given: "
                        "name the classes to label with --classes A,B")
    summary.picked = picks
    summary.asked = None if args.all else settings.count
    _write(folder, picks, label_map, settings, str(model_path))
    print(f"livedroid: {summary.line(out)}", file=sys.stderr)
    print(f"livedroid: contact sheet {out / CONTACT_SHEET}; review: livedroid review {out}", file=sys.stderr)
    return 130 if summary.interrupted else 0


def _check_out(out: Path, sources: list[str]) -> None:
    resolved = out.resolve()
    for spec in sources:
        path = Path(spec)
        if path.is_dir() and (resolved == path.resolve() or path.resolve() in resolved.parents):
            raise UserError(f"--out {out} is inside the source folder {spec}: its picks would be mined next time; "
                            "choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder")
    if out.is_dir() and any(out.iterdir()) and not LabellingFolder(out).exists:
        raise UserError(f"--out {out} holds other files and no {RECORDS}: give a new or a mined folder")


def _earlier_picks(folder: LabellingFolder) -> list:
    """(look, hash) of the folder's pictures, so a rerun never picks their near-duplicates."""
    paths = [folder.image_path(record["image"]) for record in folder.records()]
    return _looks([path for path in paths if path.is_file()])


def _known_looks(folders: list[str]) -> list:
    """(look, hash) of every image under the ``--known`` folders: photos already labelled."""
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


def _looks(paths: list[Path]) -> list:
    from livedroid.labelling.signals import dhash, thumbnail
    from livedroid.sources.images import read_rgb

    looks = []
    for path in paths:
        image = read_rgb(path)
        looks.append((thumbnail(image), dhash(image)))
    return looks


def _write(folder: LabellingFolder, picks, label_map, settings, model: str) -> None:
    if folder.exists:
        write_picks(folder, picks, label_map, settings, model)
        return
    final = folder.root
    aside = final.with_name(final.name + ".partial")
    shutil.rmtree(aside, ignore_errors=True)
    write_picks(LabellingFolder(aside), picks, label_map, settings, model)
    if final.is_dir():
        final.rmdir()  # empty (checked before mining)
    aside.replace(final)
