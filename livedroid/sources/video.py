"""Video files and network streams decoded by FFmpeg through PyAV."""

from __future__ import annotations

import heapq
import logging
import os
import re
import time
from collections import deque
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
    few corrupt bytes in a long clip do not end the run. A file is damaged when its packets cannot
    be read, when its index points past its end (a download cut short), when more than
    ``MAX_UNDECODABLE_SHARE`` of its video packets cannot be decoded, or when its demuxer had to
    skip unreadable bytes to find the next packet (Matroska resyncs silently): ``damage`` then says
    how far it got, for ``run`` and ``batch`` to report as a failure. A header that only announces
    another frame count (an AVI's) while every packet reads is not damage.
    """

    #: how far a damaged file could be read (one line); None while it reads whole
    damage: str | None = None

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
        self._packets = 0  # video packets demuxed from this container
        self._last_end = 0  # the furthest byte a video packet reached
        self._last_seconds = 0.0  # the latest video packet's time
        self._file_end = None  # where the previous packet of any stream ended, in file order
        self._unread_bytes = 0  # bytes between packets the demuxer skipped over
        self._unread_at: float | None = None  # the video time where it first did
        self._stream.thread_type = "AUTO"
        self.time_base = self._stream.time_base
        rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        self.fps = float(rate) if rate else None
        context = self._stream.codec_context
        self.size = (context.width, context.height) if context.width and context.height else None

    def frames(self) -> Iterator[Frame]:
        index = 0
        try:
            for picture, pts in presentation_order(self._pictures(), self.fps, self.time_base):
                if index == self.max_frames:
                    return
                yield Frame(
                    image=upright(picture),
                    index=index,
                    pts=pts,
                    time_base=picture.time_base or self.time_base,
                    captured_at=time.monotonic(),
                )
                index += 1
        except av.FFmpegError as error:
            self.damage = f"unreadable after {self._how_far(index)} ({_reason(error)})"
            return
        if is_stream_url(self.spec):
            return
        if self.max_frames is None and self._ran_into_the_end():
            self.damage = f"cut short: read {self._how_far(index)}"
        elif self._unread_bytes:
            self.damage = (f"{self._unread_bytes / 1000:.0f} kB of it could not be read from {self._unread_at:.1f} s on: "
                           f"read {self._how_far(index)}")
        elif self.skipped > MAX_UNDECODABLE_SHARE * self._packets:
            self.damage = f"{self.skipped} of its {self._packets} video packets could not be decoded: read {self._how_far(index)}"

    def _ran_into_the_end(self) -> bool:
        """The file was cut short (truncated, or shrinking under the reader). With an index of
        packets (MP4, AVI): the demuxer reached the end of the file while the index holds more (a
        whole file ends with its index or trailer, or with its last packet when the index says so).
        With only a duration (Matroska, WebM): the video stopped over a second and a tenth short of it.
        Files only: ``frames`` judges no stream."""
        if self._stream.frames:
            try:
                at_the_end = self._last_end >= os.path.getsize(self.spec)
            except OSError:  # deleted under the reader
                at_the_end = True
            return at_the_end and self._packets < self._stream.frames
        duration = self._announced_seconds()
        return bool(duration) and duration - self._last_seconds > max(1.0, 0.1 * duration)

    def _announced_seconds(self) -> float | None:
        if self._stream.duration and self._stream.time_base:
            return float(self._stream.duration * self._stream.time_base)
        return self._container.duration / av.time_base if self._container.duration else None

    def _how_far(self, frames: int) -> str:
        """``629 of 1394 frames (62.9 of 139.4 s)``: what was read against what the file announced."""
        announced = f" of {self._stream.frames}" if self._stream.frames else ""
        seconds = frames / self.fps if self.fps else None
        duration = self._announced_seconds()
        timing = f" ({seconds:.1f}{f' of {duration:.1f}' if duration else ''} s)" if seconds is not None else ""
        return f"{frames}{announced} frames{timing}"

    def _pictures(self) -> Iterator[av.VideoFrame]:
        """Decoded pictures; undecodable packets are skipped, demuxing errors propagate."""
        warned = False
        tapped = self.audio.stream.index if self.audio is not None and self._container.streams.audio else None
        resyncs = "matroska" in self._container.format.name
        for packet in self._container.demux():  # every stream: the holes between packets show damage
            if resyncs and packet.size and packet.pos is not None and packet.pos >= 0:
                self._note_hole(packet.pos, packet.pos + packet.size)
            if packet.stream.index == tapped:
                self.audio.put(packet)
                continue
            if packet.stream.index != self._stream.index:
                continue
            if packet.size:  # not the demuxer's empty end-of-stream packet
                self._packets += 1
                if packet.pos is not None and packet.pos >= 0:
                    self._last_end = max(self._last_end, packet.pos + packet.size)
                if packet.pts is not None and packet.time_base:
                    self._last_seconds = max(self._last_seconds, float(packet.pts * packet.time_base))
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

    def _note_hole(self, start: int, end: int) -> None:
        """Count the bytes between the previous packet and this one beyond a container's own
        overhead (a few dozen bytes of block and cluster headers): what the demuxer skipped."""
        if self._file_end is not None and start - self._file_end > MATROSKA_OVERHEAD_BYTES:
            self._unread_bytes += start - self._file_end
            if self._unread_at is None:
                self._unread_at = self._last_seconds
        self._file_end = max(self._file_end or 0, end)

    def tap_audio(self, tap: AudioTap | None = None) -> AudioTap | None:
        if not self._container.streams.audio:
            return None
        self.audio = tap or AudioTap(self._container.streams.audio[0])
        self.audio.stream = self._container.streams.audio[0]  # a stream of a closed file is freed memory
        return self.audio

    def close(self) -> None:
        self._container.close()


#: Pictures held back to put their time stamps in presentation order. The decoder returns pictures
#: in presentation order, but a container without presentation stamps stamps them in decode order
#: (an AVI with packed B-frames: 0.16 s then 0.12 s), a place or two off.
REORDER_WINDOW = 4


def presentation_order(pictures: Iterator[av.VideoFrame], fps: float | None,
                       time_base: Fraction | None) -> Iterator[tuple[av.VideoFrame, int | None]]:
    """Each picture with a time stamp that never goes backwards: the smallest of the stamps of the
    next ``REORDER_WINDOW`` pictures (what a correct file gives each picture anyway), or, where a
    container's stamps are missing or repeat, the previous one plus a frame at ``fps``. Pictures
    still held when the decoder fails come out before its error."""
    held: deque[av.VideoFrame] = deque()
    stamps: list[int] = []
    last: int | None = None
    frame_ticks = max(1, round(1 / (fps * time_base))) if fps and time_base else 1

    def release() -> tuple[av.VideoFrame, int | None]:
        nonlocal last
        stamp = heapq.heappop(stamps) if stamps else None
        if last is not None and (stamp is None or stamp <= last):
            stamp = last + frame_ticks
        last = stamp
        return held.popleft(), stamp

    try:
        for picture in pictures:
            held.append(picture)
            if picture.pts is not None:
                heapq.heappush(stamps, picture.pts)
            if len(held) == REORDER_WINDOW:
                yield release()
    except av.FFmpegError:
        while held:
            yield release()
        raise
    while held:
        yield release()


def upright(picture: av.VideoFrame) -> np.ndarray:
    """RGB pixels as the video is meant to be seen: phone clips carry a rotation to apply."""
    image = rgb_from_picture(picture)
    turns = round((picture.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


#: More undecodable video packets than this share make a file damaged; fewer are a glitch the run
#: skips with a warning. FFmpeg's own ``-max_error_rate`` defaults to 2/3: a detection record
#: with a third of its frames missing is not a success, so we are stricter.
MAX_UNDECODABLE_SHARE = 0.01

#: Bytes between two Matroska packets beyond its block and cluster headers (26 at most in the
#: clips we measured; a skipped region is the rest of a cluster, tens of kB): unreadable data.
MATROSKA_OVERHEAD_BYTES = 4096


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
    except av.error.EOFError:
        raise UserError(f"{description}: ends before its first frame: an empty or truncated video") from None
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
