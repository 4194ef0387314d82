"""Write validated images as sharded TFRecords in the Object Detection API's tf.Example schema."""

from __future__ import annotations

import math
from pathlib import Path

from tqdm import tqdm

from livedroid.training.dataset.validate import CheckedImage

IMAGES_PER_SHARD = 1000


def shard_names(split: str, num_shards: int) -> list[str]:
    """``train-00000-of-00002.record``, ... (the layout TensorFlow's own tools use)."""
    return [f"{split}-{i:05d}-of-{num_shards:05d}.record" for i in range(num_shards)]


def shard_pattern(split: str, num_shards: int) -> str:
    """A glob the Object Detection API's ``input_path`` accepts for all shards of a split."""
    return f"{split}-?????-of-{num_shards:05d}.record"


def write_split(images: list[CheckedImage], out_dir: Path, split: str, class_ids: dict[str, int]) -> list[Path]:
    """Write one split; image k goes to shard k mod n so shards stay balanced."""
    from livedroid.training.compat import tf

    num_shards = max(1, math.ceil(len(images) / IMAGES_PER_SHARD))
    paths = [out_dir / name for name in shard_names(split, num_shards)]
    writers = [tf.io.TFRecordWriter(str(path)) for path in paths]
    try:
        for index, image in enumerate(tqdm(images, desc=f"writing {split}", unit="img", leave=False)):
            writers[index % num_shards].write(to_tf_example(image, class_ids).SerializeToString())
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

