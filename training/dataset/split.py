"""Deterministic train/validation split, stratified by class."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

from livedroid.training.dataset.validate import CheckedImage


def stratified_split(
    images: list[CheckedImage], val_fraction: float, seed: int
) -> tuple[list[CheckedImage], list[CheckedImage]]:
    """Split so each class keeps about ``val_fraction`` of its images in validation.

    Each image is assigned to the group of its rarest class, so rare classes reach validation
    too. The order depends only on image content (sha256) and ``seed``, not on file order.
    Every group with two or more images gives at least one to each side when the fraction is
    above zero.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    frequency = Counter(box.label for image in images for box in image.boxes)
    groups: dict[str, list[CheckedImage]] = defaultdict(list)
    for image in images:
        rarest = min({box.label for box in image.boxes}, key=lambda label: (frequency[label], label))
        groups[rarest].append(image)
    train, val = [], []
    for label in sorted(groups):
        members = sorted(groups[label], key=lambda image: image.sha256)
        random.Random(f"{seed}:{label}").shuffle(members)
        count = round(len(members) * val_fraction)
        if val_fraction > 0 and len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        val += members[:count]
        train += members[count:]
    return train, val
