"""Write validated images as sharded TFRecords in the Object Detection API's tf.Example schema."""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

from PIL import Image

from tqdm import tqdm

from livedroid.training.dataset.validate import CheckedImage

IMAGES_PER_SHARD = 1000
#: Images are stored with their longer side at most this many times the model's longer input side.
#: Training decodes, colours, pads and crops every image at its stored size on every step before it
#: is resized to the input: star-wars photos of up to 1920x1080 cost 0.147 s of input pipeline a
#: batch of 8, stored at 600 px 0.074 s (2 cores; 0.5 s steps). Twice the input keeps a crop of half
#: the image at full input resolution.
STORED_SIDE_PER_INPUT_SIDE = 2


def shard_names(split: str, num_shards: int) -> list[str]:
    """``train-00000-of-00002.record``, ... (the layout TensorFlow's own tools use)."""
    return [f"{split}-{i:05d}-of-{num_shards:05d}.record" for i in range(num_shards)]


def shard_pattern(split: str, num_shards: int) -> str:
    """A glob the Object Detection API's ``input_path`` accepts for all shards of a split."""
    return f"{split}-?????-of-{num_shards:05d}.record"


def write_split(
    images: list[CheckedImage], out_dir: Path, split: str, class_ids: dict[str, int], max_side: int | None = None
) -> list[Path]:
    """Write one split; image k goes to shard k mod n so shards stay balanced. Images whose longer
    side exceeds ``max_side`` are stored downscaled to it (:func:`within`)."""
    from livedroid.training.compat import tf

    num_shards = max(1, math.ceil(len(images) / IMAGES_PER_SHARD))
    paths = [out_dir / name for name in shard_names(split, num_shards)]
    writers = [tf.io.TFRecordWriter(str(path)) for path in paths]
    try:
        for index, image in enumerate(tqdm(images, desc=f"writing {split}", unit="img", leave=False)):
            stored = within(image, max_side) if max_side else image
            writers[index % num_shards].write(to_tf_example(stored, class_ids).SerializeToString())
    finally:
        for writer in writers:
            writer.close()
    return paths


def to_tf_example(image: CheckedImage, class_ids: dict[str, int]):
    """The tf.train.Example the API's ``TfExampleDecoder`` reads: boxes normalized to [0, 1]."""
    from livedroid.training.compat import tf

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    def floats(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    def strings(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode("utf-8") if isinstance(v, str) else v for v in values]))

    boxes = image.boxes
    feature = {
        "image/encoded": strings([image.encoded]),
        "image/format": strings([image.format]),
        "image/height": ints([image.height]),
        "image/width": ints([image.width]),
        "image/filename": strings([image.filename]),
        "image/source_id": strings([image.filename]),
        "image/key/sha256": strings([image.sha256]),
        "image/object/bbox/xmin": floats([b.xmin / image.width for b in boxes]),
        "image/object/bbox/ymin": floats([b.ymin / image.height for b in boxes]),
        "image/object/bbox/xmax": floats([b.xmax / image.width for b in boxes]),
        "image/object/bbox/ymax": floats([b.ymax / image.height for b in boxes]),
        "image/object/class/text": strings([b.label for b in boxes]),
        "image/object/class/label": ints([class_ids[b.label] for b in boxes]),
        "image/object/difficult": ints([int(b.difficult) for b in boxes]),
        "image/object/truncated": ints([int(b.truncated) for b in boxes]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def within(image: CheckedImage, max_side: int) -> CheckedImage:
    """``image`` downscaled (area filter) so its longer side is ``max_side``, boxes scaled with it,
    re-encoded in its own format (JPEG at quality 95); unchanged when already small enough."""
    scale = max_side / max(image.width, image.height)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    with Image.open(io.BytesIO(image.encoded)) as picture:
        picture = picture.convert("RGB") if image.format == "jpeg" else picture
        small = picture.resize(size, Image.Resampling.BOX)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=95) if image.format == "jpeg" else small.save(buffer, "PNG")
    sx, sy = size[0] / image.width, size[1] / image.height
    boxes = [dataclasses.replace(b, xmin=b.xmin * sx, xmax=b.xmax * sx, ymin=b.ymin * sy, ymax=b.ymax * sy) for b in image.boxes]
    return dataclasses.replace(image, encoded=buffer.getvalue(), width=size[0], height=size[1], boxes=boxes)
