"""``livedroid mine``: pick the frames worth labelling from videos, streams, cameras or image
folders, and write them pre-annotated as a dataset ``livedroid train`` reads as it is.

source → frames → detector (frame, mirrored frame, tiles) → signals → candidates → picks → folder

Each frame is scored by :mod:`livedroid.labelling.signals`. Candidates are kept per time window
(at most one every ``min_gap`` seconds of a video, the best), so memory stays bounded on long
recordings. The picks are then chosen greedily: the most informative frame first, then the one
whose signals plus novelty (distance to every frame picked so far, the folder's earlier picks
included) are highest, never two of the same scene (:func:`same_scene`) and never two frames of one
video within ``min_gap``, the folder's earlier picks included.
"""

from __future__ import annotations

import heapq
from collections import Counter
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from livedroid.annotations import AnnotatedImage, Box
from livedroid.annotations.voc import read_voc_file
from livedroid.detections import Detections, box_iou_matrix
from livedroid.detectors import Detector
from livedroid.errors import UserError
from livedroid.labelling import signals as sig
from livedroid.labelling.dataset import (
    CONTACT_SHEET,
    IMAGES,
    REJECTED,
    LabellingFolder,
    box_record,
    write_atomic,
)
from livedroid.labelling.sheet import contact_sheet
from livedroid.settings import DEFAULT_THRESHOLD
from livedroid.signals import StopOnSignals
from livedroid.sources import Source
from livedroid.sources.images import ImageSource

log = logging.getLogger("livedroid")

#: The same-scene test: two frames show the same scene when their colour grids
#: (:func:`signals.scene_distance`) lie within SAME_PICTURE, whatever the model saw in them, or
#: within SAME_VIEW with the model's boxes in the same layout (the same classes, each box overlapping
#: one of the other frame's by LAYOUT_IOU). Tuned on picks of the shared chaplin, intel and bikes
#: clips: the same standing pair, the same street a second later 0.9-1.7 apart; a person leaping
#: instead of standing, another person's head in view 1.95 and more; another shot or view 3.2 and more.
SAME_PICTURE = 1.8
SAME_VIEW = 3.0
LAYOUT_IOU = 0.3
#: Without --classes, a model with at most this many classes labels all of them (a custom model);
#: a larger one (COCO's 80) the classes it saw at the threshold in at least CLASS_IN_USE_FRAMES
#: frames of the footage and CLASS_IN_USE_SHARE of them: a false alarm for a moment (a toilet on a
#: parking lot) is not a class to label.
ALL_CLASSES_UP_TO = 20
CLASS_IN_USE_FRAMES = 3
CLASS_IN_USE_SHARE = 0.01
#: At most this many picks on the contact sheet (the newest).
SHEET_PICKS = 400
#: How much novelty weighs against the signals (each in [0, 1]) when picking.
NOVELTY_WEIGHT = 0.5
#: Candidates kept per pick asked for (the rest are forgotten as the video plays).
POOL_PER_PICK = 6
JPEG_QUALITY = 95


@dataclass
class MineSettings:
    count: int = 50
    threshold: float = DEFAULT_THRESHOLD
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
    boxes: list[Box] = field(compare=False)
    signals: sig.FrameSignals = field(compare=False)
    views: sig.Views = field(compare=False, repr=False)
    look: np.ndarray = field(compare=False)
    colours: np.ndarray = field(compare=False, repr=False)
    jpeg: bytes = field(compare=False, repr=False)
    preview: np.ndarray | None = field(compare=False, default=None, repr=False)

    def rescore(self, threshold: float, classes: set[str] | None) -> None:
        """Signals and boxes from the boxes of ``classes`` only."""
        self.signals = sig.frame_signals(self.views, threshold, classes)
        self.score = self.signals.total
        if classes is not None:
            self.boxes = [box for box in self.boxes if box.label in classes]


@dataclass
class Seen:
    """A picture picked before (in the folder, or a --known photo): what it looks like, its boxes
    (None: unknown) and, for a video frame, where it was taken."""

    look: np.ndarray
    colours: np.ndarray
    boxes: list[Box] | None
    source: str | None = None
    timestamp: float | None = None


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
                + (f" of {self.asked} asked (the other frames were of a scene picked already or within --min-gap)"
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
        self.frames_with: Counter[str] = Counter()  # class → frames it was seen in at the threshold
        # Already in the folder (a rerun resumes): a video frame by (video, index), a photo by its path.
        records = folder.records()
        self.taken = {(r.get("source"), r.get("frame")) for r in records} | {r.get("source") for r in records}
        # Their times: a frame within --min-gap of one can never be picked, so it must not take its
        # window from a frame that can (a resumed run then picks what one run would have).
        self.taken_times: dict[str, list[float]] = {}
        for record in records:
            if record.get("timestamp") is not None:
                self.taken_times.setdefault(record.get("source"), []).append(record["timestamp"])

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
                views = self._views(frame.image)
                if not is_images and pending is not None:
                    pending[1].before = previous[1].low.select(settings.threshold) if previous else Detections()
                    pending[1].after = views.low.select(settings.threshold)
                if pending is not None:
                    self._offer(spec, *pending, gap_frames)
                previous, pending = pending, (frame, views)
                if is_images:
                    self._offer(spec, *pending, gap_frames)
                    pending = None
                if self._stopping or (settings.max_frames and read >= settings.max_frames):
                    break
            if pending is not None:
                self._offer(spec, *pending, gap_frames)
        finally:
            bar.close()
        return read

    def _views(self, image: np.ndarray) -> sig.Views:
        """What the model sees of one frame: every box from FLOOR, the mirrored frame, the tiles."""
        settings = self.settings
        views = sig.Views(self.detector.detect([image])[0].select(sig.FLOOR, settings.classes))
        if self.tiled is not None:
            views.plain = views.low.select(settings.threshold)
            views.low = self.tiled.detect([image])[0].select(sig.FLOOR, settings.classes)  # deployed with --tiles
        if settings.mirror:
            flipped = self.detector.detect([np.ascontiguousarray(image[:, ::-1])])[0]
            views.mirrored = sig.mirrored(flipped.select(settings.threshold, settings.classes), image.shape[1])
        self.frames_with.update(set(views.low.select(settings.threshold).labels))
        return views

    def classes_in_use(self, frames: int) -> set[str]:
        """The classes seen at the threshold in enough of the ``frames`` read to be worth labelling."""
        least = max(CLASS_IN_USE_FRAMES, CLASS_IN_USE_SHARE * frames)
        return {name for name, count in self.frames_with.items() if count >= least}

    def _offer(self, spec: str, frame, views: sig.Views, gap_frames: int) -> None:
        source = frame_source(spec, frame)
        if (source if frame.name else (spec, frame.index)) in self.taken:
            return
        if frame.timestamp is not None and not self.settings.take_all and any(
                abs(frame.timestamp - taken) < self.settings.min_gap for taken in self.taken_times.get(source, ())):
            return
        signals = sig.frame_signals(views, self.settings.threshold, self.settings.classes)
        key = (spec, frame.index // gap_frames)
        best = self.window.get(key)
        if best is not None and best.score >= signals.total and not self.settings.take_all:
            return
        candidate = self._candidate(spec, frame, views, signals)
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

    def _candidate(self, spec: str, frame, views: sig.Views, signals: sig.FrameSignals) -> Candidate:
        height, width = frame.image.shape[:2]
        self._order += 1
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG")
        stem = Path(frame.name).stem if frame.name else f"{Path(spec).stem}-f{frame.index:06d}"
        confident = views.low.select(self.settings.threshold)
        return Candidate(
            score=signals.total,
            order=-self._order,
            source=frame_source(spec, frame),
            frame=frame.index,
            timestamp=frame.timestamp,
            name=f"{stem}.jpg",
            width=width,
            height=height,
            boxes=[Box(label, *map(float, box), score=float(score))
                   for box, score, label in zip(confident.xyxy, confident.scores, confident.labels)],
            signals=signals,
            views=views,
            look=sig.thumbnail(frame.image),
            colours=sig.scene_colours(frame.image),
            jpeg=jpeg.tobytes(),
            preview=preview_of(frame.image),
        )

    def candidates(self) -> list[Candidate]:
        return list(self.pool) + list(self.window.values())


def pick(candidates: list[Candidate], count: int, earlier: list[Seen] = (), min_gap: float = 0.0) -> list[Candidate]:
    """Greedy picks: signals plus novelty (distance to everything picked, ``earlier`` included),
    never two of the same scene, never two frames of one video less than ``min_gap`` seconds apart
    (``earlier`` included). Novelty is the distance to the nearest pick, scaled by the largest such
    distance among the candidates left, so it weighs the same whatever the footage."""
    left = sorted(candidates, key=lambda c: (-c.score, -c.order))
    picked: list[Candidate] = []
    if not left:
        return picked
    matrix = np.stack([c.look for c in left])
    nearest = np.full(len(left), 2.0, np.float32)
    for seen in earlier:
        nearest = np.minimum(nearest, 1.0 - matrix @ seen.look)
    alive = np.array([not any(same_scene(c, seen) or too_close(c, seen, min_gap) for seen in earlier) for c in left])
    scores = np.array([c.score for c in left], np.float32)
    while len(picked) < count and alive.any():
        scale = float(nearest[alive].max()) if (earlier or picked) else 1.0
        novelty = nearest / scale if scale > 1e-6 else np.zeros_like(nearest)
        value = np.where(alive, scores + NOVELTY_WEIGHT * np.minimum(novelty, 1.0), -np.inf)
        best = int(np.argmax(value))
        chosen = left[best]
        if earlier or picked:
            chosen.signals.values["novelty"] = round(float(min(novelty[best], 1.0)), 3)
        picked.append(chosen)
        alive[best] = False
        nearest = np.minimum(nearest, 1.0 - matrix @ chosen.look)
        for index in np.nonzero(alive)[0]:
            if same_scene(left[index], chosen) or too_close(left[index], chosen, min_gap):
                alive[index] = False
    return picked


def too_close(a: Candidate, b: Candidate | Seen, min_gap: float) -> bool:
    return a.source == b.source and a.timestamp is not None and b.timestamp is not None and abs(a.timestamp - b.timestamp) < min_gap


def same_scene(a: Candidate | Seen, b: Candidate | Seen) -> bool:
    """The same view with the same things in the same places: a labeller learns nothing new from
    the second. Pictures whose boxes are unknown (--known photos) are compared by their look alone."""
    distance = sig.scene_distance(a.colours, b.colours)
    if distance < SAME_PICTURE:
        return True
    return a.boxes is not None and b.boxes is not None and distance < SAME_VIEW and same_layout(a.boxes, b.boxes)


def same_layout(a: list[Box], b: list[Box]) -> bool:
    """The same classes, as many boxes of each, every box overlapping one of the other's by LAYOUT_IOU."""
    if sorted(box.label for box in a) != sorted(box.label for box in b):
        return False
    for label in {box.label for box in a}:
        first = [[x.xmin, x.ymin, x.xmax, x.ymax] for x in a if x.label == label]
        second = [[x.xmin, x.ymin, x.xmax, x.ymax] for x in b if x.label == label]
        iou = box_iou_matrix(first, second)
        if (iou.max(axis=1) < LAYOUT_IOU).any() or (iou.max(axis=0) < LAYOUT_IOU).any():
            return False
    return True


def preview_of(image: np.ndarray) -> np.ndarray:
    """The contact sheet's thumbnail of a picture: 320 pixels wide."""
    height, width = image.shape[:2]
    return cv2.resize(image, (320, max(1, round(320 * height / width))), interpolation=cv2.INTER_AREA)


def frame_source(spec: str, frame) -> str:
    """Where a frame came from, as its record says: the video, or the photo itself (so the
    split keeps a video's frames together but not every photo of a folder)."""
    return str(Path(spec) / frame.name) if frame.name and Path(spec).is_dir() else spec


def check_label_map(folder: LabellingFolder, model_labels: dict[int, str]) -> dict[int, str]:
    """The folder's label map, refused when the model knows none of its classes (another model's
    folder). Classes added on the review page that the model does not know stay, unannotated."""
    existing = folder.label_map()
    names = set(model_labels.values())
    if existing and not names & set(existing.values()):
        raise UserError(
            f"{folder.root}: its label map names {', '.join(sorted(existing.values()))}, which the model does not know "
            f"(its labels: {', '.join(list(model_labels.values())[:8])}{' …' if len(names) > 8 else ''}); "
            "mine into another --out, or use the model the folder was mined with"
        )
    return existing


def earlier_picks(folder: LabellingFolder, classes: set[str] | None) -> list[Seen]:
    """The folder's picks as they are now (boxes as reviewed, rejected frames included), so that a
    rerun never picks their scene again nor a frame within ``--min-gap`` of one."""
    from livedroid.sources.images import read_rgb

    seen = []
    for record in folder.records():
        path = folder.image_path(record["image"])
        if not path.is_file():
            continue
        image = read_rgb(path)
        boxes = _boxes_now(folder, record)
        seen.append(Seen(sig.thumbnail(image), sig.scene_colours(image),
                         [box for box in boxes if classes is None or box.label in classes],
                         record.get("source"), record.get("timestamp")))
    return seen


def _boxes_now(folder: LabellingFolder, record: dict) -> list[Box]:
    """A pick's boxes: its XML (as reviewed, or as rejected) when there is one, else its record."""
    for xml in (folder.annotation_path(record["image"]), folder.rejected_annotation_path(record["image"])):
        if xml.is_file():
            return read_voc_file(xml).boxes
    return [Box(b["label"], *b["box"]) for b in record.get("boxes", [])]


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
        picked = AnnotatedImage(name, name, candidate.boxes, width=candidate.width, height=candidate.height)
        folder.save_image(picked, candidate.jpeg)
        records.append({
            "image": name,
            "source": candidate.source,
            "frame": candidate.frame,
            "timestamp": None if candidate.timestamp is None else round(candidate.timestamp, 3),
            "reasons": candidate.signals.reasons or ["novel: unlike the frames picked before"],
            "signals": candidate.signals.values,
            "score": round(candidate.score, 3),
            "boxes": [box_record(box) for box in candidate.boxes],
            "model": model,
            "threshold": settings.threshold,
            "mined_at": mined_at,
        })
    folder.write_label_map(label_map)
    folder.append_records(records)
    folder.write_coco()
    write_contact_sheet(folder, picks)


def write_contact_sheet(folder: LabellingFolder, fresh: list[Candidate]) -> None:
    """Every pick of the folder (the newest SHEET_PICKS), earlier runs' included, with its boxes as
    they are now; the ``fresh`` picks' pictures are not read back."""
    from livedroid.sources.images import read_rgb

    fresh_by_name = {c.name: c for c in fresh}
    cells, boxes, sizes, captions = [], [], [], []
    for record in folder.records()[-SHEET_PICKS:]:
        path = folder.image_path(record["image"])
        candidate = fresh_by_name.get(record["image"])
        if candidate is not None:
            cells.append(candidate.preview)
            sizes.append((candidate.width, candidate.height))
        elif path.is_file():
            image = read_rgb(path)
            cells.append(preview_of(image))
            sizes.append((image.shape[1], image.shape[0]))
        else:
            continue
        boxes.append([(b.label, b.xmin, b.ymin, b.xmax, b.ymax) for b in _boxes_now(folder, record)])
        captions.append(f"{record['image']}{' (rejected)' if REJECTED in path.parts else ''}: "
                        + "; ".join(record.get("reasons", [])[:2]))
    sheet = contact_sheet(cells, boxes, sizes, captions)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if ok:
        write_atomic(folder.root / CONTACT_SHEET, data.tobytes())


def label_map_for(existing: dict[int, str], model_labels: dict[int, str], classes: set[str]) -> dict[int, str]:
    """The existing classes, then ``classes`` in the model's order, numbered 1..K."""
    names = list(existing.values())
    names += [name for name in model_labels.values() if name in classes and name not in names]
    return {number: name for number, name in enumerate(names, start=1)}
