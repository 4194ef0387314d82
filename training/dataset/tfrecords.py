"""Existing Object Detection API TFRecords (for example written by the TF1-era
``generate_tfrecord.py`` scripts): read back into annotations so they are validated and re-split
like any other input."""

from __future__ import annotations

from pathlib import Path

from livedroid.annotations import AnnotatedImage, Box
from livedroid.errors import UserError

RECORD_SUFFIXES = (".record", ".tfrecord", ".tfrecords")


def find_record_files(path: Path) -> list[Path]:
    """``path`` itself when it is a record file, else the record files under it (sorted)."""
    if path.is_file():
        return [path] if _is_record_name(path) else []
    return sorted(p for p in path.rglob("*") if p.is_file() and _is_record_name(p))


def read_records(paths: list[Path], limit: int | None = None) -> list[AnnotatedImage]:
    """Decode the tf.Examples (the first ``limit`` ones when given); boxes come back in pixels of
    the stored height and width."""
    from livedroid.training.compat import tf

    images = []
    for path in paths:
        try:
            for number, serialized in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()):
                if limit is not None and len(images) >= limit:
                    return images
                images.append(_to_annotated(tf.train.Example.FromString(serialized), f"{path.name} record {number}"))
        except tf.errors.OpError as error:
            raise UserError(f"{path}: not a readable TFRecord file ({error.message})") from None
    return images


def _to_annotated(example, where: str) -> AnnotatedImage:
    features = example.features.feature

    def values(key: str) -> list:
        kind = features[key].WhichOneof("kind") if key in features else None
        return list(getattr(features[key], kind).value) if kind else []

    def first(key: str, default=None):
        found = values(key)
        return found[0] if found else default

    width, height = first("image/width"), first("image/height")
    if not (width and height):
        raise UserError(f"{where}: no image/width and image/height; not an Object Detection API record")
    texts = [t.decode("utf-8") for t in values("image/object/class/text")]
    labels = values("image/object/class/label")
    xmins, ymins = values("image/object/bbox/xmin"), values("image/object/bbox/ymin")
    xmaxs, ymaxs = values("image/object/bbox/xmax"), values("image/object/bbox/ymax")
    difficult, truncated = values("image/object/difficult"), values("image/object/truncated")
    boxes = [
        Box(
            label=texts[i] if i < len(texts) else str(labels[i]),
            xmin=xmins[i] * width,
            ymin=ymins[i] * height,
            xmax=xmaxs[i] * width,
            ymax=ymaxs[i] * height,
            difficult=bool(difficult[i]) if i < len(difficult) else False,
            truncated=bool(truncated[i]) if i < len(truncated) else False,
        )
        for i in range(len(xmins))
    ]
    filename = first("image/filename", b"").decode("utf-8") or where
    return AnnotatedImage(
        source=where,
        filename=filename,
        boxes=boxes,
        image_bytes=first("image/encoded", b""),
        width=int(width),
        height=int(height),
    )


def _is_record_name(path: Path) -> bool:
    return path.suffix.lower() in RECORD_SUFFIXES or ".record-" in path.name or ".tfrecord-" in path.name
