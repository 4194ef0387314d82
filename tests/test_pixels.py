"""The fast pixel-format paths agree with FFmpeg's own conversions."""

import av
import numpy as np
import pytest

from livedroid.pixels import picture_from_rgb, rgb_from_picture


def _gradient(width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], axis=-1).astype(np.uint8)


@pytest.mark.parametrize(
    "width, height, pix_fmt, flags",
    [
        (64, 48, "yuv420p", {}),  # the fast path
        (64, 48, "yuv420p", {"colorspace": 6, "color_range": 1}),  # BT.601 limited, said so: fast too
        (64, 48, "yuv420p", {"colorspace": 1}),  # BT.709: swscale, which honours it
        (64, 48, "yuv420p", {"color_range": 2}),  # full range: swscale
        (63, 47, "yuv420p", {}),  # odd sizes: swscale
        (64, 48, "yuvj420p", {}),
        (64, 48, "rgb24", {}),
    ],
)
def test_decoded_pictures_match_swscale(width: int, height: int, pix_fmt: str, flags: dict) -> None:
    picture = av.VideoFrame.from_ndarray(_gradient(width, height), format="rgb24").reformat(format=pix_fmt)
    for name, value in flags.items():
        setattr(picture, name, value)
    fast, reference = rgb_from_picture(picture), picture.to_ndarray(format="rgb24")
    assert fast.shape == reference.shape == (height, width, 3) and fast.dtype == np.uint8
    assert np.abs(fast.astype(int) - reference).mean() < 2.5  # chroma upsampling differs by a few levels at edges


def test_pictures_for_the_encoder_match_swscale() -> None:
    image = _gradient(64, 48)
    fast = picture_from_rgb(image)
    reference = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    assert fast.format.name == "yuv420p" and (fast.width, fast.height) == (64, 48)
    assert np.abs(fast.to_ndarray().astype(int) - reference.to_ndarray()).max() <= 2
