"""Deterministic train/validation split, stratified by class and grouped by where images came from.

Frames of one video, and near-identical shots, must land on one side of the split: with one frame
in training and the next in validation, validation measures memory, not detection. So images are
first joined into *groups*, and whole groups are assigned:

- images with the same ``origin`` (the ``source`` video of their ``mined.jsonl`` record, see
  :mod:`livedroid.training.dataset.prepare`) form one group;
- images whose perceptual hashes (64-bit dHash) differ by at most :data:`NEAR_DUPLICATE_BITS`
  bits are joined too (union-find, so chains of near-identical frames become one group).

Each group goes to the bucket of the rarest class it contains (so rare classes reach validation;
background images, which contain none, have a bucket of their own), and each bucket gives whole
groups to validation until about ``val_fraction`` of its images are there.

A bucket holding a single video (a folder mined from one clip) cannot be split that way: the
video is cut along time instead (:func:`split_along_time`), one contiguous block to validation,
the rest to training, and frames closer than :data:`TIME_SPLIT_GAP_SECONDS` to the other side
left out. Everything depends only on image content, origins, times and ``seed``, never on file order.
"""

from __future__ import annotations

import io
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from livedroid.labelling.signals import dhash
from livedroid.training.dataset.validate import CheckedImage

#: Two images whose 64-bit dHashes differ by at most this many bits are near-duplicates. Measured on
#: ../shared/datasets/star-wars (163 photos, 13203 pairs, looked at): the closest pairs are one file
#: twice (0 bits) and the same shot re-cropped (7 and 10 bits); at 11 bits come two frames of one
#: scene a moment apart and then different photos of one droid in one pose. 10 joins only copies.
NEAR_DUPLICATE_BITS = 10

#: Frames of one video cut along time keep at least this many seconds between a training and a
#: validation frame; closer ones are left out. Picks of one video are already ``mine --min-gap``
#: (1 s by default) apart, so this only bites on denser folders; 2 s takes a moving scene (a
#: person walking a few metres) far enough from the last training frame to measure something.
TIME_SPLIT_GAP_SECONDS = 2.0

#: The bucket of groups that contain no box (background images).
BACKGROUND = "(background)"


def image_hash(encoded: bytes) -> int:
    """:func:`livedroid.labelling.signals.dhash` (the one ``mine`` uses) of an encoded image,
    decoded at a fraction of its size (JPEG draft mode: the hash needs a 9x8 thumbnail)."""
    with Image.open(io.BytesIO(encoded)) as picture:
        picture.draft("RGB", (64, 64))
        return dhash(np.asarray(picture.convert("RGB")))


@dataclass
class TimeSplit:
    """One video cut along time: its validation block, the training frames around it, and the
    frames within ``gap`` seconds of the other side, left out."""

    origin: str
    gap: float
    train: list[CheckedImage]
    val: list[CheckedImage]
    left_out: list[CheckedImage]

    def summary(self) -> str:
        val = _span(self.val)
        before = [i for i in self.train if i.timestamp < self.val[0].timestamp]
        after = [i for i in self.train if i.timestamp > self.val[-1].timestamp]
        train = " and ".join(_span(part) for part in (before, after) if part)
        left = f"{len(self.left_out)} frame{'s' * (len(self.left_out) != 1)} within {self.gap:g} s of the cut left out"
        return f"one video ({Path(self.origin).name}): split along time, frames {train} train, {val} val, {left}"

    def as_dict(self) -> dict:
        return {
            "origin": self.origin,
            "train": len(self.train),
            "val": len(self.val),
            "val_seconds": [self.val[0].timestamp, self.val[-1].timestamp],
            "left_out": len(self.left_out),
            "gap_seconds": self.gap,
        }


@dataclass
class Grouping:
    """The groups of a split, for the summary and ``dataset.json``."""

    threshold: int
    groups: list[list[CheckedImage]] = field(default_factory=list)
    by_source: int = 0  # groups held together by a shared origin (video)
    by_hash: int = 0  # the others: one image, or near-duplicates joined by hash
    train_groups: int = 0
    val_groups: int = 0
    joined_by_hash: list[tuple[str, str, int]] = field(default_factory=list)  # (source, source, bits)
    along_time: list[TimeSplit] = field(default_factory=list)  # videos cut along time (a side each)

    @property
    def left_out(self) -> int:
        return sum(len(cut.left_out) for cut in self.along_time)

    def summary(self) -> str:
        lines = [
            f"groups: {self.train_groups} train, {self.val_groups} val ({self.by_source} by the source recorded "
            f"at mining, {self.by_hash} by near-duplicate hash; a group stays on one side"
            + (", except a video alone in its class, cut along time)" if self.along_time else ")")
        ]
        return "\n".join(lines + [cut.summary() for cut in self.along_time])

    def as_dict(self) -> dict:
        return {
            "train": self.train_groups,
            "val": self.val_groups,
            "by_source": self.by_source,
            "by_hash": self.by_hash,
            "hash_threshold_bits": self.threshold,
            "joined_by_hash": sum(len(g) for g in self.groups if len(g) > 1 and not any(i.origin for i in g)),
            "split_along_time": [cut.as_dict() for cut in self.along_time],
        }


def group_images(images: list[CheckedImage], threshold: int = NEAR_DUPLICATE_BITS) -> Grouping:
    """Join images by shared origin and by near-duplicate hash (union-find); deterministic."""
    ordered = sorted(images, key=lambda image: image.sha256)
    parent = list(range(len(ordered)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    first_of_origin: dict[str, int] = {}
    for index, image in enumerate(ordered):
        if image.origin:
            join(first_of_origin.setdefault(image.origin, index), index)
    grouping = Grouping(threshold=threshold)
    if threshold >= 0 and len(ordered) > 1:
        hashes = np.array([image_hash(image.encoded) for image in ordered], dtype=np.uint64)
        for i in range(len(ordered) - 1):
            distances = np.unpackbits((hashes[i] ^ hashes[i + 1 :]).view(np.uint8)).reshape(-1, 64).sum(axis=1)
            for offset in np.flatnonzero(distances <= threshold):
                j = i + 1 + int(offset)
                if find(i) != find(j):
                    grouping.joined_by_hash.append((ordered[i].source, ordered[j].source, int(distances[offset])))
                join(i, j)
    members: dict[int, list[CheckedImage]] = defaultdict(list)
    for index, image in enumerate(ordered):
        members[find(index)].append(image)
    grouping.groups = [members[root] for root in sorted(members)]
    grouping.by_source = sum(1 for g in grouping.groups if any(image.origin for image in g))
    grouping.by_hash = len(grouping.groups) - grouping.by_source
    return grouping


def grouped_split(
    images: list[CheckedImage],
    val_fraction: float,
    seed: int,
    threshold: int = NEAR_DUPLICATE_BITS,
    gap: float = TIME_SPLIT_GAP_SECONDS,
) -> tuple[list[CheckedImage], list[CheckedImage], Grouping]:
    """Split whole groups so each class keeps about ``val_fraction`` of its images in validation.

    Each group is assigned to the bucket of its rarest class. A bucket with two or more groups
    gives at least one group to each side when the fraction is above zero; a bucket of one group
    is cut along time when it is one video with frame times, else kept in training
    (``check_split`` then says which class could not be split, and why).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    grouping = group_images(images, threshold)
    frequency = Counter(box.label for image in images for box in image.boxes)
    buckets: dict[str, list[list[CheckedImage]]] = defaultdict(list)
    for group in grouping.groups:
        labels = {box.label for image in group for box in image.boxes} or {BACKGROUND}
        buckets[min(labels, key=lambda label: (frequency[label], label))].append(group)
    train, val = [], []
    for label in sorted(buckets):
        groups = buckets[label]  # already in content order (by smallest sha256)
        cut = split_along_time(groups[0], val_fraction, gap) if len(groups) == 1 and val_fraction > 0 else None
        if cut is not None:
            train.extend(cut.train)
            val.extend(cut.val)
            grouping.along_time.append(cut)
            grouping.train_groups += 1
            grouping.val_groups += 1
            continue
        random.Random(f"{seed}:{label}").shuffle(groups)
        target = round(sum(len(g) for g in groups) * val_fraction)
        taken: list[int] = []
        count = 0
        for index, group in enumerate(groups):
            if count + len(group) <= target or abs(count + len(group) - target) < abs(count - target):
                taken.append(index)
                count += len(group)
        if val_fraction > 0 and len(groups) >= 2:
            if not taken:
                taken = [0]
            elif len(taken) == len(groups):
                taken.pop()
        chosen = set(taken)
        for index, group in enumerate(groups):
            (val if index in chosen else train).extend(group)
        grouping.val_groups += len(chosen)
        grouping.train_groups += len(groups) - len(chosen)
    return train, val, grouping


def split_along_time(frames: list[CheckedImage], val_fraction: float, gap: float) -> TimeSplit | None:
    """Cut the frames of one video into a contiguous validation block of about ``val_fraction``
    of them and the training frames before and after it, leaving out frames closer than ``gap``
    seconds to the other side. Of all block positions, the one that puts the most classes (and
    background) on both sides wins, then the one leaving out fewest frames, then the latest.
    None when the frames are not one video with times, or no cut leaves both sides a frame."""
    origins = {frame.origin for frame in frames}
    if len(origins) != 1 or None in origins or any(frame.timestamp is None for frame in frames):
        return None
    frames = sorted(frames, key=lambda frame: (frame.timestamp, frame.sha256))
    times = np.array([frame.timestamp for frame in frames], dtype=float)
    kinds = [{box.label for box in frame.boxes} or {BACKGROUND} for frame in frames]
    names = sorted(set().union(*kinds))
    presence = np.array([[name in kind for name in names] for kind in kinds], dtype=int)
    prefix = np.vstack([np.zeros(len(names), dtype=int), presence.cumsum(axis=0)])
    total, size = len(frames), max(1, round(len(frames) * val_fraction))
    best = None
    for start in range(total - size + 1):
        end = start + size
        before = int(np.searchsorted(times, times[start] - gap, side="right"))  # frames at least gap earlier
        after = int(np.searchsorted(times, times[end - 1] + gap, side="left"))  # frames at least gap later
        if before == 0 and after == total:
            continue
        in_val = prefix[end] - prefix[start]
        in_train = prefix[before] + prefix[total] - prefix[after]
        rank = (int(((in_val > 0) & (in_train > 0)).sum()), -(start - before + after - end), start)
        if best is None or rank > best[0]:
            best = (rank, start, end, before, after)
    if best is None:
        return None
    _, start, end, before, after = best
    return TimeSplit(
        origin=frames[0].origin,
        gap=gap,
        train=frames[:before] + frames[after:],
        val=frames[start:end],
        left_out=frames[before:start] + frames[end:after],
    )


def _span(frames: list[CheckedImage]) -> str:
    return f"{frames[0].timestamp:.1f}-{frames[-1].timestamp:.1f} s"
