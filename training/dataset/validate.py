"""Check every annotated image before it becomes training data, and say what was done about each
problem: unreadable or truncated images, a size that disagrees with the annotation, coordinates
that are not finite numbers, boxes outside the image or of zero area, images whose every box was
unusable, duplicate images. An image annotated with no object passes: it is a background image."""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from livedroid.annotations import AnnotatedImage, Box, Problem

# Formats the Object Detection API decodes; others are re-encoded as PNG.
_DECODABLE = {"JPEG": "jpeg", "PNG": "png"}
# Grey 16-bit: TensorFlow's PNG decoder keeps the high byte, Pillow's convert("RGB") (eval,
# calibration) clips at 255: re-encoded as 8 bits so both see the same picture.
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L"}
SIXTEEN_BIT_NOTE = "16-bit image converted to 8 bits"


@dataclass
class CheckedImage:
    """An image ready to write: decodable bytes, true size, boxes inside it, content hash."""

    source: str
    filename: str
    encoded: bytes
    format: str  # "jpeg" or "png"
    width: int
    height: int
    sha256: str
    boxes: list[Box]  # empty for a background image
    origin: str | None = None  # the video it is a frame of, when known (see AnnotatedImage)
    timestamp: float | None = None  # its time in that video, in seconds


def validate_images(images: list[AnnotatedImage], problems: list[Problem]) -> list[CheckedImage]:
    """The images that pass, in input order; every image or box left out adds a Problem."""
    checked: list[CheckedImage] = []
    first_seen: dict[str, str] = {}
    for image in tqdm(images, desc="checking images", unit="img", leave=False):
        result = check_image(image, problems)
        if result is None:
            continue
        if result.sha256 in first_seen:
            problems.append(Problem(image.source, f"same image as {first_seen[result.sha256]}", "dropped image"))
            continue
        first_seen[result.sha256] = image.source
        checked.append(result)
    return checked


def check_image(image: AnnotatedImage, problems: list[Problem]) -> CheckedImage | None:
    """Validate one image and its boxes; None when the image cannot be used."""
    encoded = _read_bytes(image, problems)
    if encoded is None:
        return None
    try:
        with Image.open(io.BytesIO(encoded)) as picture:
            picture.load()  # decodes fully: truncated files fail here, not in training
            width, height = picture.size
            image_format = _DECODABLE.get(picture.format)
            if picture.mode in _SIXTEEN_BIT_MODES:
                problems.append(Problem(image.source, f"{SIXTEEN_BIT_NOTE} (value / 256)", "note"))
                encoded, image_format = _as_8bit_png(picture), "png"
            elif image_format is None:
                problems.append(Problem(image.source, f"{picture.format} image re-encoded as PNG", "note"))
                encoded, image_format = _as_png(picture), "png"
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        problems.append(Problem(image.source, f"image {_image_name(image)} is unreadable or truncated: {error}", "dropped image"))
        return None
    if image.width and image.height and (image.width, image.height) != (width, height):
        problems.append(
            Problem(
                image.source,
                f"annotation says the image is {image.width}x{image.height} but {_image_name(image)} is "
                f"{width}x{height}; re-annotate it or fix <size>",
                "dropped image",
            )
        )
        return None
    boxes = [b for b in (_fit_box(box, width, height, image.source, problems) for box in image.boxes) if b]
    if not boxes and not image.background:
        problems.append(Problem(image.source, "no usable boxes left", "dropped image"))
        return None
    return CheckedImage(
        source=image.source,
        filename=image.filename,
        encoded=encoded,
        format=image_format,
        width=width,
        height=height,
        sha256=hashlib.sha256(encoded).hexdigest(),
        boxes=boxes,
        origin=image.origin,
        timestamp=image.timestamp,
    )


def _fit_box(box: Box, width: int, height: int, where: str, problems: list[Problem]) -> Box | None:
    """The box clipped to the image, or None when nothing of it is left."""
    corners = (box.xmin, box.ymin, box.xmax, box.ymax)
    described = f"'{box.label}' box ({', '.join(f'{v:g}' for v in corners)})"
    if not all(math.isfinite(v) for v in corners):
        problems.append(Problem(where, f"{described} has a coordinate that is not a finite number", "dropped box"))
        return None
    if box.xmax <= box.xmin or box.ymax <= box.ymin:
        problems.append(Problem(where, f"{described} has zero area", "dropped box"))
        return None
    clipped = Box(
        box.label,
        min(max(box.xmin, 0.0), width),
        min(max(box.ymin, 0.0), height),
        min(max(box.xmax, 0.0), width),
        min(max(box.ymax, 0.0), height),
        box.difficult,
        box.truncated,
    )
    if clipped.xmax <= clipped.xmin or clipped.ymax <= clipped.ymin:
        problems.append(Problem(where, f"{described} lies outside the {width}x{height} image", "dropped box"))
        return None
    if (clipped.xmin, clipped.ymin, clipped.xmax, clipped.ymax) != corners:
        problems.append(Problem(where, f"{described} extends beyond the {width}x{height} image", "clipped box"))
    return clipped


def _read_bytes(image: AnnotatedImage, problems: list[Problem]) -> bytes | None:
    if image.image_bytes is not None:
        if not image.image_bytes:
            problems.append(Problem(image.source, "record has no image/encoded bytes", "dropped image"))
            return None
        return image.image_bytes
    try:
        return image.image_path.read_bytes()
    except FileNotFoundError:
        problems.append(Problem(image.source, f"image file not found: {image.image_path}", "dropped image"))
    except OSError as error:
        problems.append(Problem(image.source, f"cannot read image {image.image_path}: {error}", "dropped image"))
    return None


def _as_png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _as_8bit_png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    high_byte = np.clip(np.asarray(picture, dtype=np.int64) >> 8, 0, 255).astype(np.uint8)
    Image.fromarray(high_byte).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_name(image: AnnotatedImage) -> str:
    return str(image.image_path) if image.image_path else image.filename
