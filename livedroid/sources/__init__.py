"""Frame sources: video files, network streams, webcams and images, chosen from one string."""

from __future__ import annotations

from pathlib import Path

# OpenCV before PyAV, whatever imports this package first: PyAV's wheel bundles its own libxcb, and
# loaded before OpenCV it hangs OpenCV's Qt window (--show) as the window opens (av 18.1 with
# opencv-python 5.1; tests/sinks/test_window.py).
import cv2  # noqa: F401,I001

from livedroid.errors import UserError
from livedroid.sources.base import Source
from livedroid.sources.camera import CameraSource
from livedroid.sources.images import ImageSource, is_image_spec
from livedroid.sources.memory import MemorySource
from livedroid.sources.reader import FrameBuffer, FrameReader
from livedroid.sources.stream import StreamSource
from livedroid.sources.video import VideoSource, is_stream_url, mask_credentials

__all__ = [
    "CameraSource",
    "FrameBuffer",
    "FrameReader",
    "ImageSource",
    "MemorySource",
    "Source",
    "StreamSource",
    "VideoSource",
    "mask_credentials",
    "open_source",
]


def open_source(
    spec: str | list[str],
    *,
    connect_timeout: float = 10.0,
    read_timeout: float = 10.0,
    reconnect_timeout: float = 60.0,
) -> Source:
    """Open what the user named: ``0`` or ``/dev/video0`` (webcam), ``rtsp://…`` (stream),
    an image, a folder or a glob (images), anything else a video file. Several names must all
    be images (a shell's expanded glob)."""
    if not isinstance(spec, str):
        if len(spec) == 1:
            spec = spec[0]
        elif not all(is_image_spec(one) for one in spec):
            others = [one for one in spec if not is_image_spec(one)]
            raise UserError(f"several sources must all be images; not an image: {others[0]}")
        else:
            return ImageSource(spec)
    if spec.isdigit():
        return CameraSource(int(spec))
    if spec.startswith("/dev/video"):
        return CameraSource(spec)
    if is_stream_url(spec):
        return StreamSource(
            spec, connect_timeout=connect_timeout, read_timeout=read_timeout, reconnect_timeout=reconnect_timeout
        )
    if is_image_spec(spec):
        return ImageSource(spec)
    if not Path(spec).exists():
        raise UserError(f"source not found: {spec} (give a video file, image, folder, glob, camera index or stream URL)")
    return VideoSource(spec)
