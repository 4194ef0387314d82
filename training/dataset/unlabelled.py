"""Tell unlabelled images from background images.

An image annotated as holding no object is a background image and is training data. An image no
one annotated says nothing: an image file beside the annotated ones that no annotation names, or
a mined frame nobody reviewed whose model found nothing (``AnnotatedImage.labelled`` False). Those
are left out, with one line that counts them.
"""

from __future__ import annotations

from pathlib import Path

from livedroid.annotations import AnnotatedImage
from livedroid.sources.images import IMAGE_SUFFIXES


def leave_out_unlabelled(source: Path, annotated: list[AnnotatedImage]) -> list[AnnotatedImage]:
    """The labelled images of ``annotated``; one printed line counts the unlabelled ones."""
    named = {image.image_path.resolve() for image in annotated if image.image_path is not None}
    folders = {path.parent for path in named}
    not_named = [
        path for folder in sorted(folders) for path in sorted(folder.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES and path.resolve() not in named
    ]
    labelled = [image for image in annotated if image.labelled]
    not_reviewed = len(annotated) - len(labelled)
    if not_named or not_reviewed:
        parts = [f"{len(not_named)} that no annotation names"] if not_named else []
        parts += [f"{not_reviewed} mined frames nobody reviewed, with no box"] if not_reviewed else []
        print(f"{source}: {len(not_named) + not_reviewed} unlabelled images left out ({', '.join(parts)}); "
              "an image annotated with no object is kept as a background image")
    return labelled
