"""Which files a batch works on, and where each one's outputs go."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from livedroid.errors import UserError

#: The batch's own files in DIR (manifest.py): an input of that name gets an output name beside it.
RESERVED_NAMES = {"manifest"}
#: What a folder given as input is searched for (recursively).
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp"}


@dataclass(frozen=True)
class FileJob:
    """One input file and its two outputs; ``name`` (its path relative to the output folder,
    without extension) identifies it in the manifest."""

    input: str
    name: str
    video: Path | None
    jsonl: Path


def find_jobs(inputs: list[str], out_dir: Path, *, video: bool = True) -> list[FileJob]:
    """Expand files, folders (recursively, keeping their sub-folders under ``out_dir``) and globs.

    Files inside ``out_dir`` (earlier outputs) are never inputs. Two inputs whose outputs would
    collide are refused rather than one overwriting the other.
    """
    out_dir = out_dir.resolve()
    named: dict[str, str] = {}
    for spec in inputs:
        for path, name in _expand(spec):
            if Path(path).resolve().is_relative_to(out_dir):
                continue
            if name in RESERVED_NAMES:  # manifest.mp4 would write manifest.jsonl over the manifest
                name = f"{name}-video"
            other = named.setdefault(name, path)
            if other != path:
                raise UserError(f"{other} and {path} would both write {name}.jsonl: rename one, or batch them into separate --out folders")
    jobs = [
        FileJob(
            input=path,
            name=name,
            video=out_dir / f"{name}-detections.mp4" if video else None,
            jsonl=out_dir / f"{name}.jsonl",
        )
        for name, path in named.items()
    ]
    if not jobs:
        raise UserError(f"no input files outside --out {out_dir}")
    return jobs


def _expand(spec: str) -> list[tuple[str, str]]:
    """(absolute input path, output name) for each file ``spec`` names."""
    path = Path(spec)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        if not found:
            raise UserError(f"{spec}: folder holds no videos ({', '.join(sorted(VIDEO_EXTENSIONS))})")
        return [(os.path.abspath(p), p.relative_to(path).with_suffix("").as_posix()) for p in found]
    if path.is_file():
        return [(os.path.abspath(path), path.stem)]
    if glob.has_magic(spec):
        found = sorted(p for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not found:
            raise UserError(f"{spec}: no files match")
        return [(os.path.abspath(p), Path(p).stem) for p in found]
    raise UserError(f"input not found: {spec}")
