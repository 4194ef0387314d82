"""Video files and network streams decoded by FFmpeg through PyAV."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from livedroid.errors import UserError
from livedroid.frames import Frame
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
    """Decode the first video stream of a file or URL, keeping each frame's pts.

    Packets that fail to decode are skipped, counted in ``skipped`` and warned about once, so a
    few corrupt bytes in a long clip do not end the run.
    """

    def __init__(
        self,
        spec: str,
        *,
        live: bool | None = None,
        open_timeout: float = 10.0,
        read_timeout: float = 10.0,
        max_frames: int | None = None,
    ) -> None:
        self.spec = spec
        self.max_frames = max_frames
        self.description = mask_credentials(spec)
        self.live = is_stream_url(spec) if live is None else live
        self._open_timeout = open_timeout
        self._read_timeout = read_timeout
        self._container = self._open()
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        self.time_base = stream.time_base
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate else None
        self.frame_count = None if self.live else _count_frames(self._container, stream, self.fps)
        if max_frames is not None:
            self.frame_count = min(self.frame_count or max_frames, max_frames)
        if not self.live and self._container.streams.audio:
            self.audio_path = spec

    def _open(self) -> av.container.InputContainer:
        options = {}
        if is_stream_url(self.spec):
            options = {"rtsp_transport": "tcp"} if self.spec.lower().startswith("rtsp") else {}
        elif not Path(self.spec).is_file():
            raise UserError(f"video not found: {self.spec}")
        try:
            container = av.open(
                self.spec,
                options=options,
                timeout=(self._open_timeout, self._read_timeout) if is_stream_url(self.spec) else None,
            )
        except av.error.HTTPUnauthorizedError:
            raise UserError(f"{self.description}: the server refused the credentials (401)") from None
        except av.error.InvalidDataError as error:
            raise UserError(f"{self.description}: not a video FFmpeg can read ({_reason(error)})") from None
        except OSError as error:
            raise UserError(f"{self.description}: cannot open ({_reason(error)})") from None
        except av.FFmpegError as error:
            raise UserError(f"{self.description}: cannot open ({_reason(error)})") from None
        if not container.streams.video:
            container.close()
            raise UserError(f"{self.description}: has no video stream")
        return container

    def frames(self) -> Iterator[Frame]:
        index = 0
        warned = False
        for packet in self._container.demux(self._stream):
            try:
                decoded = packet.decode()
            except av.error.EOFError:
                break
            except av.error.InvalidDataError as error:
                self.skipped += 1
                if not warned:
                    log.warning("%s: skipping undecodable data (%s)", self.description, _reason(error))
                    warned = True
                continue
            for picture in decoded:
                if index == self.max_frames:
                    return
                yield Frame(
                    image=picture.to_ndarray(format="rgb24"),
                    index=index,
                    pts=picture.pts,
                    time_base=picture.time_base or self.time_base,
                    captured_at=time.monotonic(),
                )
                index += 1

    def close(self) -> None:
        self._container.close()


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
