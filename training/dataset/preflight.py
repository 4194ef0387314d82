"""The pre-flight of ``prepare``: what the data means for the model that will train on it, said
before the long fit rather than after it.

Object sizes are measured where the detector sees them, at the model's input (an SSD matches each
box to anchors of about its size; a box under the smallest anchor can only be matched loosely),
boxes per image against the non-max suppression's limits, class balance, the pixel range,
near-duplicates and negatives. Where a figure says the default will do badly, one line says what to
try; data that no model here can learn from stops with one line before anything is written.
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from livedroid.annotations import Problem
from livedroid.errors import UserError
from livedroid.training.dataset.split import Grouping
from livedroid.training.dataset.validate import SIXTEEN_BIT_NOTE, CheckedImage
from livedroid.training.pipeline import DEFAULT_TEMPLATE, TEMPLATES_DIR, template_names

SIZE_BIN_EDGES = (4, 8, 16, 32, 64, 128, 256, 512)  # object side at the input, px (sqrt of box area)
UNSEEABLE_PX = 4  # every object under this at the input: there is nothing for the detector to see
SMALL_SHARE = 0.2  # a class with this share of its boxes under the smallest anchor gets advice
CROWDED_SHARE = 0.8  # an image holding this share of the detection limit in boxes gets advice
RARE_SHARE = 0.1  # a class in under this share of the commonest class's images gets advice
SCENE_SHARE = 0.5  # fewer near-duplicate groups than this share of the images gets advice
FEW_IMAGES = 30  # "a few dozen images of a class for a useful detector"
TINY_IMAGE_PX = 32  # images with a side under this are noted
PIXEL_SAMPLE = 40  # images decoded for the pixel range
BAR_WIDTH = 30


# The model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelGeometry:
    """What the pre-flight needs of a pipeline config: the input the images are resized to, the
    smallest anchor (px at the input, square root of its area) and the non-max suppression's
    limits. ``keep_aspect_min_side`` is set for a keep-aspect resizer, whose longest side is
    ``width`` (= ``height``)."""

    name: str
    width: int
    height: int
    smallest_anchor: float | None
    max_per_class: int
    max_total: int
    feature_extractor: str = ""
    keep_aspect_min_side: int | None = None

    def scale(self, width: int, height: int) -> tuple[float, float]:
        """Factors from an image of ``width`` x ``height`` to the model's input."""
        if self.keep_aspect_min_side:
            factor = min(self.keep_aspect_min_side / min(width, height), self.width / max(width, height))
            return factor, factor
        return self.width / width, self.height / height

    def describe(self) -> str:
        anchor = f", smallest anchor {self.smallest_anchor:.0f} px" if self.smallest_anchor else ""
        return (f"{self.name} ({self.width}x{self.height} input{anchor}, at most {self.max_total} detections, "
                f"{self.max_per_class} a class)")


def model_geometry(config: Path | None = None) -> ModelGeometry:
    """Read a pipeline config (default: the default template) without TensorFlow."""
    path = Path(config) if config else TEMPLATES_DIR / f"{DEFAULT_TEMPLATE}.config"
    try:
        fields = read_text_proto(path.read_text(encoding="utf-8"))
        (architecture, (model, *_)), *_ = _get(fields, "model").items()
    except FileNotFoundError:
        raise UserError(f"pipeline config not found: {path}") from None
    except (IndexError, ValueError, AttributeError, TypeError):
        raise UserError(f"{path}: not a valid pipeline config (no model {{ ... }} section the pre-flight can read)") from None
    name = path.stem if path.parent == TEMPLATES_DIR else str(path)
    fixed = _get(model, "image_resizer", "fixed_shape_resizer")
    keep = _get(model, "image_resizer", "keep_aspect_ratio_resizer")
    if fixed is not None:
        width, height, min_side = int(_get(fixed, "width", default=300)), int(_get(fixed, "height", default=300)), None
    elif keep is not None:
        width = height = int(_get(keep, "max_dimension", default=1024))
        min_side = int(_get(keep, "min_dimension", default=600))
    else:
        raise UserError(f"{path}: {architecture} has no fixed_shape_resizer or keep_aspect_ratio_resizer the pre-flight can read")
    nms = _get(model, "post_processing", "batch_non_max_suppression") or _get(
        model, "second_stage_post_processing", "batch_non_max_suppression") or {}
    return ModelGeometry(
        name=name,
        width=width,
        height=height,
        smallest_anchor=_smallest_anchor(_get(model, "anchor_generator") or {}, math.sqrt(width * height)),
        max_per_class=int(_get(nms, "max_detections_per_class", default=100)),
        max_total=int(_get(nms, "max_total_detections", default=100)),
        feature_extractor=str(_get(model, "feature_extractor", "type", default="")),
        keep_aspect_min_side=min_side,
    )


def _smallest_anchor(generator: dict, input_side: float) -> float | None:
    """As the Object Detection API builds them (multiple_grid_anchor_generator.create_ssd_anchors,
    multiscale_grid_anchor_generator): None for a generator it does not describe."""
    ssd = _get(generator, "ssd_anchor_generator")
    if ssd is not None:
        scales = [float(s) for s in ssd.get("scales", [])]
        if not scales:
            low, high = float(_get(ssd, "min_scale", default=0.2)), float(_get(ssd, "max_scale", default=0.95))
            layers = int(_get(ssd, "num_layers", default=6))
            scales = [low + (high - low) * i / max(layers - 1, 1) for i in range(layers)]
        smallest = min(scales)
        if str(_get(ssd, "reduce_boxes_in_lowest_layer", default="true")).lower() == "true":
            smallest = min(0.1, scales[0])  # the lowest layer's boxes are (0.1, 1:1), (scale, 2:1), (scale, 1:2)
        base = math.sqrt(float(_get(ssd, "base_anchor_height", default=1.0)) * float(_get(ssd, "base_anchor_width", default=1.0)))
        return smallest * base * input_side
    multiscale = _get(generator, "multiscale_anchor_generator")
    if multiscale is not None:  # absolute pixels: stride 2**level times anchor_scale
        return 2 ** int(_get(multiscale, "min_level", default=3)) * float(_get(multiscale, "anchor_scale", default=4.0))
    return None


_TOKEN = re.compile(r"#[^\n]*|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[{}<>\[\]:,;]|[^\s{}<>\[\]:,;\"'#]+")


def read_text_proto(text: str) -> dict[str, list]:
    """Protobuf text format as nested dicts (field name → its values; messages are dicts, scalars
    strings), without the schema: the Object Detection API's protos need TensorFlow
    (training/compat.py), and ``prepare`` reads a few numbers. IndexError when malformed."""
    tokens = [token for token in _TOKEN.findall(text) if not token.startswith("#")]
    position = 0

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def values() -> list:
        token = take()
        if token in ("{", "<"):
            return [message("}" if token == "{" else ">")]
        if token == "[":
            items: list = []
            while tokens[position] != "]":
                items.extend(values())
                if tokens[position] == ",":
                    take()
            take()
            return items
        return [token.strip("\"'")]

    def message(end: str | None) -> dict[str, list]:
        fields: dict[str, list] = {}
        while position < len(tokens) and tokens[position] != end:
            name = take()
            if tokens[position] == ":":
                take()
            fields.setdefault(name, []).extend(values())
            if position < len(tokens) and tokens[position] in (",", ";"):
                take()
        if end is not None:
            take()  # the closing bracket (IndexError when missing)
        return fields

    return message(None)


def _get(fields: dict, *path: str, default=None):
    """The first value at ``path`` in :func:`read_text_proto`'s dicts, else ``default``."""
    for name in path:
        if not isinstance(fields, dict) or not fields.get(name):
            return default
        fields = fields[name][0]
    return fields


# The data ------------------------------------------------------------------------------------


@dataclass
class Preflight:
    """The figures (kept in ``dataset.json``), the text printed, the advice, and ``stop``: the one
    line that ends the run before anything is written, when the data cannot train this model."""

    model: ModelGeometry
    figures: dict = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    stop: str | None = None

    def text(self) -> str:
        lines = [f"pre-flight for {self.model.describe()}:", *(f"  {line}" for line in self.lines)]
        if self.advice:
            lines += ["  what to try:", *(f"    - {line}" for line in self.advice)]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"model": asdict(self.model), **self.figures, "advice": self.advice}


def preflight(
    images: list[CheckedImage],
    grouping: Grouping,
    problems: list[Problem],
    model: ModelGeometry,
    max_detections: int,
) -> Preflight:
    """The pre-flight of ``images`` (train and validation together) for ``model``; a larger-input
    advice names one of the templates."""
    result = Preflight(model)
    _images_section(result, images, problems)
    _pixels_section(result, images)
    _groups_section(result, images, grouping)
    _boxes_per_image_section(result, images, model, max_detections)
    _classes_section(result, images)
    _sizes_section(result, images, model, template_geometries())
    return result


def template_geometries() -> list[ModelGeometry]:
    return [model_geometry(TEMPLATES_DIR / f"{name}.config") for name in template_names()]


def _images_section(result: Preflight, images: list[CheckedImage], problems: list[Problem]) -> None:
    sizes = Counter((image.width, image.height) for image in images)
    modes = Counter(_mode(image) for image in images)
    grey = sum(n for mode, n in modes.items() if mode in ("1", "L", "LA"))
    sixteen_bit = sum(1 for problem in problems if problem.what.startswith(SIXTEEN_BIT_NOTE))
    negatives = sum(1 for image in images if not image.boxes)
    tiny = [image for image in images if min(image.width, image.height) < TINY_IMAGE_PX]
    common, common_count = sizes.most_common(1)[0]
    smallest = min(images, key=lambda image: image.width * image.height)
    largest = max(images, key=lambda image: image.width * image.height)
    spread = "all" if common_count == len(images) else (
        f"{common_count} of them; {len(sizes)} sizes from {smallest.width}x{smallest.height} to {largest.width}x{largest.height}")
    result.figures["images"] = {
        "count": len(images),
        "most_common_size": list(common),
        "sizes": len(sizes),
        "smallest": [smallest.width, smallest.height],
        "largest": [largest.width, largest.height],
        "grey": grey,
        "sixteen_bit_converted": sixteen_bit,
        "negatives": negatives,
        "under_32_px": len(tiny),
    }
    result.lines.append(f"images: {len(images)}, {common[0]}x{common[1]} ({spread}); "
                        f"negatives (no boxes): {negatives} ({_percent(negatives, len(images))})")
    if grey:
        result.lines.append(f"  grey (single-channel): {grey}, trained as three equal channels (colour augmentation does nothing to them)")
    if sixteen_bit:
        result.lines.append(f"  16-bit: {sixteen_bit}, converted to 8 bits (value / 256, as TensorFlow decodes a 16-bit PNG)")
    if tiny:
        names = ", ".join(f"{image.source} ({image.width}x{image.height})" for image in tiny[:3])
        result.lines.append(f"  {_count(len(tiny), 'image')} under {TINY_IMAGE_PX} px a side, scaled up to the input: {names}")


def _mode(image: CheckedImage) -> str:
    with Image.open(io.BytesIO(image.encoded)) as picture:  # the header only
        return picture.mode


def _pixels_section(result: Preflight, images: list[CheckedImage]) -> None:
    """Value range over a sample spread over the images (by content hash: any file order)."""
    ordered = sorted(images, key=lambda image: image.sha256)
    sample = ordered[:: max(1, math.ceil(len(ordered) / PIXEL_SAMPLE))]
    histogram = np.zeros(256, np.int64)
    narrow = 0
    for image in sample:
        with Image.open(io.BytesIO(image.encoded)) as picture:
            picture.draft("RGB", (256, 256))
            pixels = np.asarray(picture.convert("RGB"))
        counts = np.bincount(pixels.ravel(), minlength=256)
        histogram += counts
        low, high = _percentiles(counts, 0.01, 0.99)
        narrow += high - low < 128
    present = np.flatnonzero(histogram)
    low, high = _percentiles(histogram, 0.01, 0.99)
    result.figures["pixels"] = {
        "sampled_images": len(sample),
        "min": int(present[0]),
        "max": int(present[-1]),
        "p1": low,
        "p99": high,
        "low_contrast_images": narrow,
    }
    result.lines.append(
        f"pixels: {present[0]}-{present[-1]} over {len(sample)} sampled images (1st-99th percentile {low}-{high}); "
        f"{narrow} of them low-contrast (their own 1st-99th percentile spans under half the range)"
    )


def _percentiles(histogram: np.ndarray, *quantiles: float) -> list[int]:
    cumulative = np.cumsum(histogram) / max(histogram.sum(), 1)
    return [int(np.searchsorted(cumulative, q)) for q in quantiles]


def _groups_section(result: Preflight, images: list[CheckedImage], grouping: Grouping) -> None:
    joined = [group for group in grouping.groups if len(group) > 1 and not any(image.origin for image in group)]
    in_joined = sum(len(group) for group in joined)
    result.figures["near_duplicates"] = {
        "groups": len(grouping.groups),
        "images_joined_by_hash": in_joined,
        "groups_joined_by_hash": len(joined),
        "groups_by_source": grouping.by_source,
    }
    result.lines.append(
        f"near-duplicates: {_count(in_joined, 'image')} in {_count(len(joined), 'group')} joined by hash, "
        f"{_count(grouping.by_source, 'group')} by source video; {_count(len(grouping.groups), 'group')} in all for "
        f"{_count(len(images), 'image')} (a group stays on one side of the split)"
    )
    if len(grouping.groups) < SCENE_SHARE * len(images):
        result.advice.append(
            f"near-duplicates: {_count(len(images), 'image')} are {_count(len(grouping.groups), 'scene')} "
            f"({grouping.val_groups} of them in validation): new scenes teach more than more frames of these"
        )


def _boxes_per_image_section(result: Preflight, images: list[CheckedImage], model: ModelGeometry, max_detections: int) -> None:
    counts = np.array([len(image.boxes) for image in images])
    per_class = max((n for image in images for n in Counter(box.label for box in image.boxes).values()), default=0)
    limit = min(max_detections, model.max_total)
    result.figures["boxes_per_image"] = {
        "max": int(counts.max()),
        "p95": int(np.ceil(np.percentile(counts, 95))),
        "mean": round(float(counts.mean()), 2),
        "max_of_one_class": per_class,
        "limit": limit,
        "limit_per_class": model.max_per_class,
    }
    result.lines.append(
        f"boxes per image: max {counts.max()}, p95 {np.ceil(np.percentile(counts, 95)):.0f}, mean {counts.mean():.1f} "
        f"(the model keeps at most {limit}, {model.max_per_class} of a class)"
    )
    if counts.max() >= CROWDED_SHARE * limit:
        wanted = 2 * int(counts.max())
        template = (f"; the checkpoint's own evaluation keeps {model.max_total}: a --config whose post_processing keeps "
                    f"max_total_detections: {wanted}") if model.max_total < wanted else ""
        result.advice.append(f"crowded images: up to {counts.max()} boxes in one image against a limit of {limit} "
                             f"detections: --max-detections {wanted} (the exported model's limit){template}")
    elif per_class >= CROWDED_SHARE * model.max_per_class:
        result.advice.append(f"crowded images: up to {per_class} boxes of one class in an image against "
                             f"{model.max_per_class} a class: a --config with a larger max_detections_per_class")


def _classes_section(result: Preflight, images: list[CheckedImage]) -> None:
    boxes = Counter(box.label for image in images for box in image.boxes)
    holding = Counter(label for image in images for label in {box.label for box in image.boxes})
    total = sum(boxes.values())
    if not total:
        return
    ordered = sorted(boxes, key=lambda name: (-boxes[name], name))
    rarest = ordered[-1]
    result.figures["classes"] = {
        name: {"boxes": boxes[name], "images": holding[name], "share": round(boxes[name] / total, 4)} for name in ordered
    }
    listing = ", ".join(f"{name} {_count(boxes[name], 'box')} in {_count(holding[name], 'image')} ({_percent(boxes[name], total)})" for name in ordered)
    result.lines.append(f"classes: {listing}" + (f"; rarest {rarest}, {_percent(boxes[rarest], total)} of the boxes" if len(ordered) > 1 else ""))
    most = max(holding, key=lambda name: (holding[name], name))
    for name in ordered:
        if holding[name] < FEW_IMAGES:
            result.advice.append(f"{name}: in {_count(holding[name], 'image')} only: annotate more images of {name} (a few dozen at least)")
        elif holding[name] < RARE_SHARE * holding[most]:
            result.advice.append(f"{name}: in {_count(holding[name], 'image')} against {holding[most]} of {most}: "
                                 f"annotate more images of {name}")


def _sizes_section(result: Preflight, images: list[CheckedImage], model: ModelGeometry, alternatives: list[ModelGeometry]) -> None:
    labels, at_input, native = _box_sizes(images, model)
    if not len(labels):
        return
    anchor = model.smallest_anchor
    under = at_input < anchor if anchor else np.zeros(len(labels), bool)
    bins = np.searchsorted(SIZE_BIN_EDGES, at_input, side="right")
    histogram = np.bincount(bins, minlength=len(SIZE_BIN_EDGES) + 1)
    names = [f"< {SIZE_BIN_EDGES[0]}", *(f"{a}-{b}" for a, b in zip(SIZE_BIN_EDGES, SIZE_BIN_EDGES[1:])), f">= {SIZE_BIN_EDGES[-1]}"]
    result.figures["object_size"] = {
        "measure": f"sqrt(box width x height) in px at the {model.width}x{model.height} input",
        "histogram": {name: int(n) for name, n in zip(names, histogram) if n},
        "min": round(float(at_input.min()), 1),
        "median": round(float(np.median(at_input)), 1),
        "max": round(float(at_input.max()), 1),
        "smallest_anchor": anchor,
        "under_smallest_anchor": int(under.sum()),
    }
    under_text = f", {under.sum()} of {len(labels)} ({_percent(under.sum(), len(labels))}) under the smallest anchor ({anchor:.0f} px)" if anchor else ""
    result.lines.append(f"object size at the input (sqrt of box area, px): min {at_input.min():.1f}, "
                        f"median {np.median(at_input):.1f}, max {at_input.max():.1f}{under_text}")
    shown = np.flatnonzero(histogram)
    peak = histogram.max()
    for index in range(shown[0], shown[-1] + 1):
        bar = "#" * math.ceil(BAR_WIDTH * histogram[index] / peak) if histogram[index] else ""
        result.lines.append(f"  {names[index]:>8} {histogram[index]:>6} {bar}")
    if at_input.max() < UNSEEABLE_PX:
        result.stop = (
            f"every object is under {UNSEEABLE_PX} px at the model's {model.width}x{model.height} input (the largest "
            f"{at_input.max():.1f} px): there is nothing for a detector to see; annotate crops of the images (tiles) in which "
            f"the objects span a few dozen pixels"
        )
        return
    if not anchor:
        return
    small = sorted({label for label in labels if under[labels == label].mean() >= SMALL_SHARE})
    if not small:
        return
    shares = ", ".join(f"{name} {_percent(under[labels == name].sum(), (labels == name).sum())}" for name in small)
    # A tile of side T reaches the input at input/T: a box of native side s then reaches the anchor when T <= s*input/anchor.
    tile = int(np.median(native[under] * model.width / anchor)) // 32 * 32
    if 32 <= tile < np.median([max(image.width, image.height) for image in images]):
        result.advice.append(
            f"small objects ({shares} of boxes under the {anchor:.0f}-px smallest anchor): at run time "
            f"'livedroid run --tiles --tile-size {tile}' (in tiles of {tile} px half of those boxes reach the anchor; more tiles are slower)"
        )
    better = _larger_input(images, model, alternatives, int(under.sum()))
    if better:
        alternative, fewer = better
        result.advice.append(
            f"small objects: a larger input, --model {alternative.name} ({alternative.width}x{alternative.height}, "
            f"{alternative.feature_extractor}): {fewer} of {len(labels)} boxes under its smallest anchor instead of {under.sum()} "
            f"(slower steps)"
        )


def _box_sizes(images: list[CheckedImage], model: ModelGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per box: its class, its side at the model's input and in the image (sqrt of area)."""
    labels, at_input, native = [], [], []
    for image in images:
        sx, sy = model.scale(image.width, image.height)
        for box in image.boxes:
            width, height = box.xmax - box.xmin, box.ymax - box.ymin
            labels.append(box.label)
            at_input.append(math.sqrt(width * sx * height * sy))
            native.append(math.sqrt(width * height))
    return np.array(labels), np.array(at_input), np.array(native)


def _larger_input(images: list[CheckedImage], model: ModelGeometry, alternatives: list[ModelGeometry], under: int):
    """The alternative with the fewest boxes under its smallest anchor, when it has under half as many."""
    best = None
    for alternative in alternatives:
        if not alternative.smallest_anchor or alternative.name == model.name:
            continue
        fewer = int((_box_sizes(images, alternative)[1] < alternative.smallest_anchor).sum())
        if fewer < under / 2 and (best is None or fewer < best[1]):
            best = (alternative, fewer)
    return best


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}{'es' if noun.endswith('x') else 's'}"


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"
