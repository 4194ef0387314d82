"""``livedroid mine``: pick the frames worth labelling from videos, streams, cameras or image
folders, and write them pre-annotated as a dataset ``livedroid train`` reads as it is.

source → frames → detector (frame, mirrored frame, tiles) → signals → candidates → picks → folder

Each frame is scored by :mod:`livedroid.labelling.signals`. Candidates are kept per time window
(at most one every ``min_gap`` seconds of a video, the best), so memory stays bounded on long
recordings. The picks are then chosen greedily: the most informative frame first, then the one
whose signals plus novelty (distance to every frame picked so far, the folder's earlier picks
included) are highest, never two near-duplicates.
"""

from __future__ import annotations

import heapq
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from livedroid.detections import Detections
from livedroid.detectors import Detector
from livedroid.errors import UserError
from livedroid.labelling import signals as sig
from livedroid.labelling.dataset import (
    CONTACT_SHEET,
    IMAGES,
    REJECTED,
    LabelBox,
    LabelledImage,
    LabellingFolder,
    write_atomic,
)
from livedroid.labelling.sheet import contact_sheet
from livedroid.signals import StopOnSignals
from livedroid.sources import Source
from livedroid.sources.images import ImageSource

log = logging.getLogger("livedroid")

#: Two pictures are near-duplicates when their 64-bit hashes differ in at most this many bits and
#: their thumbnails lie closer than this: measured on the intel clip, an empty room against itself
#: a minute later is 0-2 bits and 0.0004-0.011 apart, the room with a person in it 0.09-0.28 away;
#: one person standing still, half a second apart, 3 bits and 0.032 (a labeller's duplicate).
DUPLICATE_BITS = 6
DUPLICATE_DISTANCE = 0.04
#: How much novelty weighs against the signals (each in [0, 1]) when picking.
NOVELTY_WEIGHT = 0.5
#: Candidates kept per pick asked for (the rest are forgotten as the video plays).
POOL_PER_PICK = 6
JPEG_QUALITY = 95


@dataclass
class MineSettings:
    count: int = 50
    threshold: float = 0.5
    classes: set[str] | None = None
    min_gap: float = 1.0  # seconds between two picks of one video
    mirror: bool = True
    take_all: bool = False
    max_frames: int | None = None
    progress: bool = True


@dataclass(order=True)
class Candidate:
    """A frame that may be picked: its signals, its look and its JPEG."""

    score: float
    order: int
    source: str = field(compare=False)
    frame: int = field(compare=False)
    timestamp: float | None = field(compare=False)
    name: str = field(compare=False)
    width: int = field(compare=False)
    height: int = field(compare=False)
    boxes: list[LabelBox] = field(compare=False)
    signals: sig.FrameSignals = field(compare=False)
    look: np.ndarray = field(compare=False)
    hash: int = field(compare=False)
    jpeg: bytes = field(compare=False, repr=False)
    preview: np.ndarray | None = field(compare=False, default=None, repr=False)


@dataclass
class MineSummary:
    frames: int = 0
    sources: int = 0
    candidates: int = 0
    picked: list[Candidate] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    asked: int | None = None  # --count (None with --all)

    def line(self, out: Path) -> str:
        fired: dict[str, int] = {}
        for pick in self.picked:
            for name in pick.signals.values:
                fired[name] = fired.get(name, 0) + 1
        why = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in sorted(fired.items(), key=lambda kv: -kv[1]))
        boxes = sum(len(p.boxes) for p in self.picked)
        fps = self.frames / self.seconds if self.seconds else 0.0
        return (f"mined {self.frames} frames of {self.sources} source{'s' if self.sources != 1 else ''} in "
                f"{self.seconds:.1f} s ({fps:.1f} fps): {len(self.picked)} picked"
                + (f" of {self.asked} asked (the other frames were near-duplicates or within --min-gap)"
                   if self.asked and len(self.picked) < self.asked else "")
                + (f" ({why})" if why else "") + f", {boxes} boxes pre-annotated → {out}")


class Miner:
    """Scores every frame of the sources and keeps the best candidates, bounded."""

    def __init__(self, detector: Detector, settings: MineSettings, folder: LabellingFolder, tiled: Detector | None = None) -> None:
        self.detector = detector
        self.tiled = tiled  # --tiles: pre-annotations from the tiles, compared with the frame alone
        self.settings = settings
        self.folder = folder
        self.pool: list[Candidate] = []  # a min-heap on score: the weakest is dropped first
        self.window: dict[tuple[str, int], Candidate] = {}  # (source, time window) → its best
        self._order = 0
        self._stopping = False
        # Already in the folder (a rerun resumes): a video frame by (video, index), a photo by its path.
        self.taken = {(r.get("source"), r.get("frame")) for r in folder.records()} | {r.get("source") for r in folder.records()}

    def stop(self) -> None:
        self._stopping = True

    def mine(self, sources: list[tuple[str, Source]]) -> MineSummary:
        summary = MineSummary(sources=len(sources))
        began = time.monotonic()
        with StopOnSignals(self.stop, finishing="picking from the frames read so far"):
            for spec, source in sources:
                summary.frames += self._mine_source(spec, source)
                if self._stopping:
                    summary.interrupted = True
                    break
        summary.seconds = time.monotonic() - began
        summary.candidates = len(self.pool) + len(self.window)
        return summary

    def _mine_source(self, spec: str, source: Source) -> int:
        settings = self.settings
        total = source.frame_count
        if settings.max_frames:
            total = min(total or settings.max_frames, settings.max_frames)
        gap_frames = max(1, round(settings.min_gap * source.fps)) if source.fps and not settings.take_all else 1
        is_images = isinstance(source, ImageSource)
        # Flicker needs the frames on both sides: a frame is scored once the next one is read.
        previous = pending = None
        read = 0
        bar = tqdm(total=total, desc=f"mining {Path(spec).name}", unit="frame", leave=False, disable=not settings.progress)
        try:
            for frame in source.frames():
                read += 1
                bar.update()
                found = self._views(frame.image)
                if not is_images and pending is not None:
                    sig.flicker(previous[2] if previous else Detections(), pending[2], found[1], pending[3])
                if pending is not None:
                    self._offer(spec, pending, gap_frames)
                previous, pending = pending, (frame, *found)
                if is_images:
                    self._offer(spec, pending, gap_frames)
                    pending = None
                if self._stopping or (settings.max_frames and read >= settings.max_frames):
                    break
            if pending is not None:
                self._offer(spec, pending, gap_frames)
        finally:
            bar.close()
        return read

    def _views(self, image: np.ndarray) -> tuple[Detections, Detections, sig.FrameSignals]:
        """(all boxes from FLOOR, the boxes at the threshold, the view signals) of one frame."""
        settings = self.settings
        signals = sig.FrameSignals()
        low = self.detector.detect([image])[0].select(sig.FLOOR, settings.classes)
        confident = low.select(settings.threshold)
        if self.tiled is not None:
            tiled_low = self.tiled.detect([image])[0].select(sig.FLOOR, settings.classes)
            tiled = tiled_low.select(settings.threshold)
            sig.view_disagreement(confident, tiled, "tiles", signals)
            low, confident = tiled_low, tiled  # deployed with --tiles: annotate what tiles see
        if settings.mirror:
            flipped = self.detector.detect([np.ascontiguousarray(image[:, ::-1])])[0]
            flipped = sig.mirrored(flipped.select(settings.threshold, settings.classes), image.shape[1])
            sig.view_disagreement(confident, flipped, "mirror", signals)
        sig.near_threshold(low.filter(np.abs(low.scores - settings.threshold) < sig.NEAR_BAND), settings.threshold, signals)
        return low, confident, signals

    def _offer(self, spec: str, scored: tuple, gap_frames: int) -> None:
        frame, _, confident, signals = scored
        if (frame_source(spec, frame) if frame.name else (spec, frame.index)) in self.taken:
            return
        key = (spec, frame.index // gap_frames)
        best = self.window.get(key)
        if best is not None and best.score >= signals.total and not self.settings.take_all:
            return
        candidate = self._candidate(spec, frame, confident, signals)
        if self.settings.take_all:
            self.pool.append(candidate)
            return
        self.window[key] = candidate
        # Windows behind the newest are complete: their best joins the bounded pool.
        for done in [k for k in self.window if k[0] == spec and k[1] < key[1]]:
            self._pool(self.window.pop(done))

    def _pool(self, candidate: Candidate) -> None:
        limit = max(self.settings.count * POOL_PER_PICK, 64)
        if len(self.pool) < limit:
            heapq.heappush(self.pool, candidate)
        elif candidate > self.pool[0]:
            heapq.heapreplace(self.pool, candidate)

    def _candidate(self, spec: str, frame, confident: Detections, signals: sig.FrameSignals) -> Candidate:
        height, width = frame.image.shape[:2]
        self._order += 1
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG")
        stem = Path(frame.name).stem if frame.name else f"{Path(spec).stem}-f{frame.index:06d}"
        preview = cv2.resize(frame.image, (320, max(1, round(320 * height / width))), interpolation=cv2.INTER_AREA)
        return Candidate(
            score=signals.total,
            order=-self._order,
            source=frame_source(spec, frame),
            frame=frame.index,
            timestamp=frame.timestamp,
            name=f"{stem}.jpg",
            width=width,
            height=height,
            boxes=[LabelBox(label, *map(float, box), score=float(score))
                   for box, score, label in zip(confident.xyxy, confident.scores, confident.labels)],
            signals=signals,
            look=sig.thumbnail(frame.image),
            hash=sig.dhash(frame.image),
            jpeg=jpeg.tobytes(),
            preview=preview,
        )

    def candidates(self) -> list[Candidate]:
        return list(self.pool) + list(self.window.values())


def pick(candidates: list[Candidate], count: int, earlier: list[tuple[np.ndarray, int]] = (),
         min_gap: float = 0.0) -> list[Candidate]:
    """Greedy picks: signals plus novelty (distance to everything picked, ``earlier`` included),
    no near-duplicates, no two frames of one video less than ``min_gap`` seconds apart. Novelty is the distance to the nearest pick, scaled by the largest such
    distance among the candidates left, so it weighs the same whatever the footage."""
    looks = [look for look, _ in earlier]
    left = sorted(candidates, key=lambda c: (-c.score, -c.order))
    picked: list[Candidate] = []
    if not left:
        return picked
    matrix = np.stack([c.look for c in left])
    nearest = np.full(len(left), 2.0, np.float32)
    for look in looks:
        nearest = np.minimum(nearest, 1.0 - matrix @ look)
    alive = np.ones(len(left), bool)
    for index, candidate in enumerate(left):
        if any(_duplicates(candidate, look, h) for look, h in earlier):
            alive[index] = False
    scores = np.array([c.score for c in left], np.float32)
    while len(picked) < count and alive.any():
        scale = float(nearest[alive].max()) if (looks or picked) else 1.0
        novelty = nearest / scale if scale > 1e-6 else np.zeros_like(nearest)
        value = np.where(alive, scores + NOVELTY_WEIGHT * np.minimum(novelty, 1.0), -np.inf)
        best = int(np.argmax(value))
        chosen = left[best]
        if looks or picked:
            chosen.signals.values["novelty"] = round(float(min(novelty[best], 1.0)), 3)
        picked.append(chosen)
        alive[best] = False
        nearest = np.minimum(nearest, 1.0 - matrix @ chosen.look)
        for index in np.nonzero(alive)[0]:
            if _duplicates(left[index], chosen.look, chosen.hash) or _too_close(left[index], chosen, min_gap):
                alive[index] = False
    return picked


def _too_close(a: Candidate, b: Candidate, min_gap: float) -> bool:
    return a.source == b.source and a.timestamp is not None and b.timestamp is not None and abs(a.timestamp - b.timestamp) < min_gap


def frame_source(spec: str, frame) -> str:
    """Where a frame came from, as its record says: the video, or the photo itself (so the
    split keeps a video's frames together but not every photo of a folder)."""
    return str(Path(spec) / frame.name) if frame.name and Path(spec).is_dir() else spec


def _duplicates(candidate: Candidate, look: np.ndarray, hash_: int) -> bool:
    return sig.hamming(candidate.hash, hash_) <= DUPLICATE_BITS and 1.0 - float(candidate.look @ look) < DUPLICATE_DISTANCE


def check_label_map(folder: LabellingFolder, model_labels: dict[int, str], wanted: set[str] | None) -> dict[int, str]:
    """The folder's label map after this run: its classes first (which the model must know),
    then the classes of ``--classes`` or of the model. Ids are 1..K as training expects."""
    existing = folder.label_map()
    names = set(model_labels.values())
    foreign = [name for name in existing.values() if name not in names]
    if foreign:
        raise UserError(
            f"{folder.root}: its label map names {', '.join(sorted(foreign))}, which the model does not know "
            f"(its labels: {', '.join(list(model_labels.values())[:8])}{' …' if len(names) > 8 else ''}); "
            "mine into another --out, or use the model the folder was mined with"
        )
    return existing


def write_picks(folder: LabellingFolder, picks: list[Candidate], label_map: dict[int, str], settings: MineSettings,
                model: str) -> None:
    """Images, XML, label map, records, COCO and contact sheet; names never collide with what
    the folder holds."""
    # Rejected frames keep their names (and their review state): a new pick never takes one.
    used = {path.name for sub in (IMAGES, REJECTED) for path in (folder.root / sub).glob("*")}
    records = []
    mined_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for candidate in sorted(picks, key=lambda c: (c.source, c.frame)):
        name, number = candidate.name, 1
        while name in used:
            number += 1
            name = f"{Path(candidate.name).stem}-{number}.jpg"
        used.add(name)
        candidate.name = name
        folder.save_image(LabelledImage(name, candidate.width, candidate.height, candidate.boxes), candidate.jpeg)
        records.append({
            "image": name,
            "source": candidate.source,
            "frame": candidate.frame,
            "timestamp": None if candidate.timestamp is None else round(candidate.timestamp, 3),
            "reasons": candidate.signals.reasons or ["novel: unlike the frames picked before"],
            "signals": candidate.signals.values,
            "score": round(candidate.score, 3),
            "boxes": [box.as_dict() for box in candidate.boxes],
            "model": model,
            "threshold": settings.threshold,
            "mined_at": mined_at,
        })
    folder.write_label_map(label_map)
    folder.append_records(records)
    folder.write_coco()
    by_name = {c.name: c for c in picks}
    sheet = contact_sheet(
        [by_name[r["image"]].preview for r in records],
        [[(b.label, b.x1, b.y1, b.x2, b.y2) for b in by_name[r["image"]].boxes] for r in records],
        [(by_name[r["image"]].width, by_name[r["image"]].height) for r in records],
        [f"{r['image']}: " + "; ".join(r["reasons"][:2]) for r in records],
    )
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if ok:
        write_atomic(folder.root / CONTACT_SHEET, data.tobytes())


def label_map_for(picks: list[Candidate], existing: dict[int, str], model_labels: dict[int, str],
                  wanted: set[str] | None) -> dict[int, str]:
    """The existing classes, then ``--classes`` (in the model's order) or the classes the picks
    hold, numbered 1..K."""
    present = {box.label for c in picks for box in c.boxes}
    names = list(existing.values())
    for name in model_labels.values():
        if name not in names and (name in wanted if wanted else name in present):
            names.append(name)
    return {number: name for number, name in enumerate(names, start=1)}
