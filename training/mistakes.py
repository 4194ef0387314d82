"""What a user needs to decide whether to trust a detector, at the threshold it will run with:
for each ground-truth object, was it named right, named as another class, or missed; how many
extra boxes of its class sit on it (duplicates); and which boxes sit on nothing (false alarms).

COCO mAP averages over every threshold; these counts are what a user sees in ``livedroid run``.
On a background image (annotated with no object) every box is a false alarm.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from livedroid.annotations import Box
from livedroid.detections import Detections, box_iou
from livedroid.wording import plural

MATCH_IOU = 0.5  # a box "sits on" an object when they overlap this much (COCO's mAP@0.5 rule)
MISSED = "(missed)"


@dataclass
class ImageMistakes:
    """The outcome of one image: per object, the class it was named as (or ``MISSED``)."""

    named_as: list[tuple[str, str]] = field(default_factory=list)  # (true label, predicted label or MISSED)
    duplicates: int = 0  # extra boxes on an object already boxed
    duplicated_objects: int = 0  # objects boxed more than once
    false_alarms: list[str] = field(default_factory=list)  # labels of boxes on no object

    @property
    def objects_right(self) -> bool:
        return all(truth == named for truth, named in self.named_as)

    @property
    def clean(self) -> bool:
        """Every object named right, no duplicate, no false alarm: what a user hopes to see."""
        return self.objects_right and not self.duplicates and not self.false_alarms

    @property
    def mistakes(self) -> int:
        return sum(truth != named for truth, named in self.named_as) + self.duplicates + len(self.false_alarms)

    def summary(self) -> str:
        """The caption of the image on the contact sheet: ``R2-D2 as BB-8, 1 duplicate, 3 RBC
        missed, 2 false RBC`` (counted, so a crowded image's fits under it; plain ASCII, which
        the sheet's font draws)."""

        def counted(n: int, text: str) -> str:
            return text if n == 1 else f"{n} {text}"

        wrong = Counter((truth, named) for truth, named in self.named_as if truth != named)
        parts = [counted(n, f"{truth} missed" if named == MISSED else f"{truth} as {named}") for (truth, named), n in wrong.items()]
        parts += [f"{self.duplicates} duplicate"] if self.duplicates else []
        parts += [counted(n, f"false {label}") for label, n in Counter(self.false_alarms).items()]
        return ", ".join(parts) or "right"


def image_mistakes(truth: list[Box], found: Detections, min_score: float) -> ImageMistakes:
    """Match one image's detections (score >= ``min_score``) to its objects.

    Each object takes the best-scoring box of its own class that overlaps it (IoU >= 0.5) and not
    already taken; failing that it is "named as" the best-scoring other-class box on it; failing
    that it is missed. Every other box on an object, whatever its class, is a duplicate (the user
    sees the object boxed twice); boxes on no object are false alarms."""
    kept = found.select(min_score=min_score)
    order = np.argsort(-kept.scores, kind="stable")
    used = np.zeros(len(kept), bool)
    result = ImageMistakes()
    overlaps = [box_iou([b.xmin, b.ymin, b.xmax, b.ymax], kept.xyxy) if len(kept) else np.zeros(0) for b in truth]
    on_object = np.zeros(len(kept), bool)
    for iou in overlaps:
        on_object |= iou >= MATCH_IOU
    for box, iou in zip(truth, overlaps):
        same = [i for i in order if iou[i] >= MATCH_IOU and kept.labels[i] == box.label and not used[i]]
        other = [i for i in order if iou[i] >= MATCH_IOU and kept.labels[i] != box.label and not used[i]]
        taken = (same or other or [None])[0]
        if taken is not None:
            used[taken] = True
        result.named_as.append((box.label, kept.labels[taken] if taken is not None else MISSED))
    duplicated = set()
    for i in order:
        if used[i]:
            continue
        if not on_object[i]:
            result.false_alarms.append(kept.labels[i])
            continue
        result.duplicates += 1  # a second box (of any class) on an object already boxed
        duplicated.add(int(np.argmax([iou[i] for iou in overlaps])))
    result.duplicated_objects = len(duplicated)
    return result


@dataclass
class MistakeReport:
    """Counts over a validation set, at one threshold."""

    min_score: float
    images: int
    clean_images: int
    images_objects_right: int
    confusion: dict[str, dict[str, int]]  # true label → predicted label (or MISSED) → objects
    duplicates: int
    duplicated_objects: int
    false_alarms: dict[str, int]
    background_images: int  # images with no object of the measured classes
    background_images_with_false_alarms: int
    background_false_alarms: dict[str, int]  # the boxes on those images, per class

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def mistake_report(
    truth: list[list[Box]], detections: list[Detections], labels: list[str], min_score: float
) -> tuple[MistakeReport, list[ImageMistakes]]:
    """:func:`image_mistakes` over every image, summed into a confusion table."""
    per_image = [image_mistakes(t, d, min_score) for t, d in zip(truth, detections)]
    confusion = {label: Counter() for label in labels}
    for outcome in per_image:
        for true_label, named in outcome.named_as:
            confusion.setdefault(true_label, Counter())[named] += 1
    columns = list(labels) + [MISSED]
    report = MistakeReport(
        min_score=min_score,
        images=len(per_image),
        clean_images=sum(o.clean for o in per_image),
        images_objects_right=sum(o.objects_right for o in per_image),
        confusion={row: {column: counts.get(column, 0) for column in columns} for row, counts in confusion.items()},
        duplicates=sum(o.duplicates for o in per_image),
        duplicated_objects=sum(o.duplicated_objects for o in per_image),
        false_alarms=dict(Counter(label for o in per_image for label in o.false_alarms)),
        background_images=sum(not t for t in truth),
        background_images_with_false_alarms=sum(not t and bool(o.false_alarms) for t, o in zip(truth, per_image)),
        background_false_alarms=dict(Counter(label for t, o in zip(truth, per_image) if not t for label in o.false_alarms)),
    )
    return report, per_image


def format_report(report: MistakeReport) -> str:
    """The confusion table and the counts, as printed by ``livedroid train eval``."""
    columns = list(next(iter(report.confusion.values()), {}).keys())
    width = max([len("true \\ named") + 1] + [len(c) for c in columns] + [len(r) for r in report.confusion])
    lines = [f"at score >= {report.min_score:g} (what 'livedroid run' shows by default), each object:"]
    lines.append("  " + "true \\ named".ljust(width) + "".join(c.rjust(width) for c in columns))
    for row, counts in report.confusion.items():
        lines.append("  " + row.ljust(width) + "".join(str(counts[c]).rjust(width) for c in columns))
    false_alarms = ", ".join(f"{n} {label}" for label, n in report.false_alarms.items()) or "none"
    lines.append(
        f"  images with every object named right: {report.images_objects_right}/{report.images}; "
        f"and no extra box: {report.clean_images}/{report.images}"
    )
    lines.append(
        f"  objects boxed twice or more: {report.duplicated_objects} ({plural(report.duplicates, 'extra box', 'extra boxes')}); "
        f"false alarms (boxes on no object): {false_alarms}"
    )
    if report.background_images:
        boxes = sum(report.background_false_alarms.values())
        lines.append(
            f"  images with no object to find (background): {report.background_images}, "
            f"{report.background_images_with_false_alarms} with a false alarm"
            + (f" ({plural(boxes, 'box', 'boxes')})" if boxes else "")
        )
    return "\n".join(lines)
