"""Annotated images: the one in-memory form, and one reader/writer per file format (``voc``,
``coco``), shared by ``mine`` and ``review`` (:mod:`livedroid.labelling`) and ``train prepare``
(``livedroid.training.dataset``).

It lives in the runtime package, pure Python (no TensorFlow, no Pillow), because ``mine`` and
``review`` run in an install without the ``train`` extra; what ``review`` saves is read by
``prepare`` through the very same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Box:
    """One annotated object, in pixel coordinates of the annotated image."""

    label: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    difficult: bool = False
    truncated: bool = False
    score: float | None = None  # the model's, for a pre-annotation (``mine``); None for a person's box


@dataclass
class AnnotatedImage:
    """An image and its boxes, as the annotation file describes them (not yet validated).

    ``source`` says where the annotation came from (file, or file and record number) so every
    message can point at it. The image is either a file (``image_path``) or bytes already loaded
    (``image_bytes``, from TFRecords). ``width``/``height`` are the annotated size, None when the
    format does not record it. ``origin`` is the video the image is a frame of, when known (the
    ``source`` of its ``mined.jsonl`` record), and ``timestamp`` its time in that video in seconds:
    the split keeps frames of one video together, or cuts the video along time.

    An image whose annotation holds no object (``boxes`` empty) is a *background* image: training
    data that teaches where nothing is, and where a detection is a false alarm. ``labelled`` is
    False for an image nobody annotated (a mined frame no one reviewed, with no pre-annotation):
    it is left out, not taken as background. ``boxes_dropped`` counts boxes the reader or the
    label matching could not use; an image that lost all its boxes is never background.
    """

    source: str
    filename: str
    boxes: list[Box] = field(default_factory=list)
    image_path: Path | None = None
    image_bytes: bytes | None = None
    width: int | None = None
    height: int | None = None
    origin: str | None = None
    timestamp: float | None = None
    labelled: bool = True
    boxes_dropped: int = 0

    @property
    def background(self) -> bool:
        """Annotated, and annotated as holding no object."""
        return self.labelled and not self.boxes and not self.boxes_dropped


@dataclass
class Problem:
    """A located finding of the reader or validator; ``action`` says what was done about it."""

    where: str
    what: str
    action: str  # "dropped image", "dropped box", "clipped box", "note"

    def __str__(self) -> str:
        return f"{self.where}: {self.what} ({self.action})"
