"""Video files and network streams decoded by FFmpeg through PyAV."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.pixels import rgb_from_picture
from livedroid.sources.audio import AudioTap
from livedroid.sources.base import Source

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "srt://")
_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")


def mask_credentials(text: str) -> str:
    """Replace ``user:pass@`` in every URL of ``text`` by ``***@`` so logs never leak passwords."""
    return _CREDENTIALS.sub(r"\1***@", text)


def is_stream_url(spec: str) -> bool:
    return spec.lower().startswith(STREAM_SCHEMES)


class VideoSource(Source):
    """Decode the first video stream of a file, keeping each frame's pts.

    Packets that fail to decode are skipped, counted in ``skipped`` and warned about once, so a
    few corrupt bytes in a long clip do not end the run.
    """

    def __init__(self, spec: str, *, max_frames: int | None = None) -> None:
        self.spec = spec
        self.description = mask_credentials(spec)
        self.max_frames = max_frames
        if not is_stream_url(spec) and not Path(spec).is_file():
            raise UserError(f"video not found: {spec}")
        self._use(_open_container(spec, self.description))
        self.frame_count = _count_frames(self._container, self._stream, self.fps)
        if max_frames is not None:
            self.frame_count = min(self.frame_count or max_frames, max_frames)
        if self._container.streams.audio:
            self.audio_path = spec

    def _use(self, container: av.container.InputContainer) -> None:
        self._container = container
        self._stream = container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.time_base = self._stream.time_base
        rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        self.fps = float(rate) if rate else None
        context = self._stream.codec_context
        self.size = (context.width, context.height) if context.width and context.height else None

    def frames(self) -> Iterator[Frame]:
        index = 0
        try:
            for picture in self._pictures():
                if index == self.max_frames:
                    return
                yield Frame(
                    image=upright(picture),
                    index=index,
                    pts=picture.pts,
                    time_base=picture.time_base or self.time_base,
                    captured_at=time.monotonic(),
                )
                index += 1
        except av.FFmpegError as error:
            log.warning("%s: unreadable after frame %d, stopping there (%s)", self.description, index, _reason(error))
            return
        if self.max_frames is None and self.frame_count and index < 0.9 * self.frame_count:
            log.warning("%s: ended after %d of about %d frames: the file is truncated or damaged",
                        self.description, index, self.frame_count)

    def _pictures(self) -> Iterator[av.VideoFrame]:
        """Decoded pictures; undecodable packets are skipped, demuxing errors propagate."""
        warned = False
        tapped = self.audio is not None and self._container.streams.audio
        for packet in self._container.demux(self._stream, *(self._container.streams.audio[:1] if tapped else ())):
            if packet.stream.type == "audio":
                self.audio.put(packet)
                continue
            try:
                decoded = packet.decode()
            except av.error.EOFError:
                return
            except av.error.InvalidDataError as error:
                self.skipped += 1
                if not warned:
                    log.warning("%s: skipping undecodable data (%s)", self.description, _reason(error))
                    warned = True
                continue
            yield from decoded

    def tap_audio(self, tap: AudioTap | None = None) -> AudioTap | None:
        if not self._container.streams.audio:
            return None
        self.audio = tap or AudioTap(self._container.streams.audio[0])
        self.audio.stream = self._container.streams.audio[0]  # a stream of a closed file is freed memory
        return self.audio

    def close(self) -> None:
        self._container.close()


def upright(picture: av.VideoFrame) -> np.ndarray:
    """RGB pixels as the video is meant to be seen: phone clips carry a rotation to apply."""
    image = rgb_from_picture(picture)
    turns = round((picture.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


class StreamRefused(UserError):
    """The server answered and said no (bad credentials, unknown path): retrying cannot fix it."""


def _open_container(
    spec: str, description: str, options: dict | None = None, timeout: tuple[float, float] | None = None
) -> av.container.InputContainer:
    """``av.open`` with every failure turned into one clear line; must hold a video stream."""
    try:
        container = av.open(spec, options=options or {}, timeout=timeout)
    except av.error.HTTPUnauthorizedError:
        raise StreamRefused(f"{description}: the server refused the credentials (401 Unauthorized)") from None
    except av.error.HTTPNotFoundError:
        raise StreamRefused(f"{description}: no such stream on the server (404 Not Found)") from None
    except av.error.InvalidDataError as error:
        raise UserError(f"{description}: not a readable video: truncated, damaged or not a video ({_reason(error)})") from None
    except (OSError, av.FFmpegError) as error:
        raise UserError(f"{description}: cannot open ({_reason(error)})") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{description}: has no video stream")
    return container


def _count_frames(container: av.container.InputContainer, stream: av.video.VideoStream, fps: float | None) -> int | None:
    """The frame count from the header, else estimated from the duration (for the progress bar)."""
    if stream.frames:
        return stream.frames
    if stream.duration and stream.time_base and fps:
        return round(float(stream.duration * stream.time_base) * fps)
    if container.duration and fps:
        return round(container.duration / av.time_base * fps)
    return None


def _reason(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return mask_credentials(text)
