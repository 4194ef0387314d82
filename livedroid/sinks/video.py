"""Annotated video through PyAV: H.264 yuv420p (VP9 for WebM), input timestamps and audio kept."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from livedroid.codecs import DEFAULT_PRESET, VIDEO_CODECS, codec_options, encoder_threads
from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.pixels import picture_from_rgb
from livedroid.sinks.base import PartialFile, Sink

if TYPE_CHECKING:
    from livedroid.sources.base import Source

log = logging.getLogger(__name__)

# Audio codecs each container family stores as they are; others are re-encoded (AAC, or Opus
# for WebM) so that the audio is always kept.
_COPYABLE_AUDIO = {
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le"},
    "matroska": None,  # anything
    "webm": {"opus", "vorbis"},
    "avi": {"mp3", "ac3", "pcm_s16le", "aac"},
}
_FALLBACK_AUDIO = {"webm": "libopus"}
#: Opus encodes at 48 kHz (or 24, 16, 12, 8); other rates are resampled by the encoder.
_AUDIO_RATES = {"libopus": 48000}


class VideoSink(Sink):
    """Writes frames with the input's own pts and time base, so duration and variable frame
    rates survive, and follows them with the input's audio packets up to each written frame.

    The file is written as ``NAME.partial`` and renamed when closed, so it plays whenever the
    run ends through ``close()`` (end of input, Ctrl-C, SIGTERM).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float | None,
        time_base: Fraction | None,
        audio_from: str | None = None,
        audio_like: av.audio.AudioStream | None = None,
        codec: str | None = None,
        crf: int = 23,
        preset: str = DEFAULT_PRESET,
        overwrite: bool = False,
        inputs: tuple[str, ...] = (),
    ) -> None:
        self._file = PartialFile(path, overwrite=overwrite, inputs=inputs)
        self.path = self._file.path
        self._format = _format_for(self._file.path)
        self.fps = Fraction(fps).limit_denominator(100_000) if fps else Fraction(30)
        self.time_base = time_base or 1 / self.fps
        self._codec = codec or VIDEO_CODECS.get(self._format, "libx264")
        self._options = codec_options(self._codec, crf, preset)
        self._audio_from = audio_from
        #: without ``audio_from``: the stream whose packets ``write_audio`` is given
        self._audio_like = audio_like
        self._container: av.container.OutputContainer | None = None
        self._stream = None
        self._audio: _AudioFollower | None = None
        self._last_pts: int | None = None
        #: a write failed (a full disk): the container is never muxed into again
        self._failed = False

    @classmethod
    def for_source(cls, path: str | Path, source: Source, **options: object) -> "VideoSink":
        """The annotated copy of ``source``: its frame rate, timestamps and audio kept (``run``, ``batch``)."""
        return cls(path, fps=source.fps, time_base=source.time_base, audio_from=source.audio_path, **options)

    def _open(self, width: int, height: int) -> None:
        try:
            container = av.open(str(self._file.partial), "w", format=self._format)
            options = {**self._options, **encoder_threads(self._codec, width, height)}
            stream = container.add_stream(self._codec, rate=self.fps, options=options)
        except (av.FFmpegError, ValueError) as error:
            raise UserError(f"cannot write video {self._file.path}: {error}") from None
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = self.time_base
        stream.codec_context.time_base = self.time_base
        self._container, self._stream = container, stream
        if self._audio_from:
            self._audio = _AudioFollower.attach(self._audio_from, container, self._format)
        elif self._audio_like is not None:
            self._audio = _AudioFollower.for_stream(self._audio_like, None, container, self._format)
        # The header now, at the first frame: a disk that cannot take it fails here, in one place,
        # and nothing is muxed after (FFmpeg crashes muxing into a container without a header).
        container.start_encoding()

    def write(self, frame: Frame, detections: Detections, scene: np.ndarray | None) -> None:
        if self._failed:
            raise UserError(f"cannot write video {self._file.path}: an earlier write failed")
        try:
            image = _even(scene)
            if self._container is None:
                self._open(image.shape[1], image.shape[0])
            picture = picture_from_rgb(image)
            picture.pts = self._next_pts(frame)
            picture.time_base = self.time_base
            for packet in self._stream.encode(picture):
                self._container.mux(packet)
            if self._audio:
                self._audio.copy_until(float((picture.pts + 1) * self.time_base))
        except BaseException:
            self._failed = True
            raise

    def write_audio(self, packet: av.Packet) -> None:
        """One packet of ``audio_like``'s stream, its pts already in this file's timeline (after
        the first frame: the file opens with it)."""
        if self._audio is not None:
            self._audio.write(packet)

    def _next_pts(self, frame: Frame) -> int:
        """The frame's own pts in the output time base; strictly increasing, as encoders need."""
        if frame.pts is not None and frame.time_base is not None:
            pts = round(frame.pts * frame.time_base / self.time_base)
        else:
            pts = round(frame.index / self.fps / self.time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        return pts

    def close(self, complete: bool = True) -> None:
        if self._failed:
            self._abandon()
            if self._file.partial.exists() and not self._file.partial.stat().st_size:
                self._file.partial.unlink()  # nothing of it reached the disk
            self._file.finish(False)
            return
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        if self._audio:
            end = (self._last_pts + 1) * self.time_base + 1 / self.fps
            self._audio.copy_until(float(end))
            self._audio.close()
        self._container.close()
        self._container = None
        self._file.finish(complete)

    def discard(self) -> None:
        """Give the file up after a write failed (a full disk) and delete it: the container is
        closed without muxing the encoder's last packets, since muxing after a header that failed
        to write crashes FFmpeg (SIGSEGV)."""
        self._abandon()
        self._file.partial.unlink(missing_ok=True)

    def _abandon(self) -> None:
        """Close the container without muxing the encoder's last packets (see :meth:`discard`)."""
        if self._container is not None:
            try:
                self._container.close()
            except (av.FFmpegError, OSError):
                pass  # its MP4 index could not be written either
            self._container = None
        self._audio = None  # its input closes when collected


class _AudioFollower:
    """Copies (or re-encodes) the input's first audio stream into the output, in step with video."""

    def __init__(self, source: av.container.InputContainer | None, stream: av.audio.AudioStream, output, out_stream, copy: bool) -> None:
        self._source = source
        self._in = stream
        self._output = output
        self._out = out_stream
        self._copy = copy
        self._packets = source.demux(stream) if source else iter(())
        self._pending: av.Packet | None = None

    @classmethod
    def attach(cls, path: str, output: av.container.OutputContainer, format_name: str) -> "_AudioFollower | None":
        source = av.open(path)
        if not source.streams.audio:
            source.close()
            return None
        return cls.for_stream(source.streams.audio[0], source, output, format_name)

    @classmethod
    def for_stream(cls, stream: av.audio.AudioStream, source: av.container.InputContainer | None,
                   output: av.container.OutputContainer, format_name: str) -> "_AudioFollower":
        """Copies ``stream`` into ``output``, or re-encodes it where the container cannot hold it."""
        allowed = _COPYABLE_AUDIO.get(format_name, set())
        if allowed is None or stream.codec_context.codec.canonical_name in allowed:
            return cls(source, stream, output, output.add_stream_from_template(stream), copy=True)
        codec = _FALLBACK_AUDIO.get(format_name, "aac")
        log.info("re-encoding %s audio as %s for %s", stream.codec_context.codec.canonical_name, codec, format_name)
        out_stream = output.add_stream(codec, rate=_AUDIO_RATES.get(codec) or stream.codec_context.sample_rate or 48000)
        # a named layout: AAC refuses unordered ones ('2 channels'); more than 2 are downmixed
        out_stream.layout = {1: "mono", 2: "stereo"}.get(stream.codec_context.layout.nb_channels, "stereo")
        return cls(source, stream, output, out_stream, copy=False)

    def copy_until(self, seconds: float) -> None:
        """Write the audio packets that start before ``seconds``."""
        while True:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    return
            packet = self._pending
            if packet.size and packet.pts is not None and float(packet.pts * packet.time_base) >= seconds:
                return
            self._pending = None
            if packet.size:  # the demuxer ends each stream with an empty flush packet
                self.write(packet)

    def write(self, packet: av.Packet) -> None:
        if self._copy:
            packet.stream = self._out
            self._output.mux(packet)
            return
        try:
            frames = packet.decode()
        except av.FFmpegError:
            return
        for frame in frames:
            frame.pts = None
            for out_packet in self._out.encode(frame):
                self._output.mux(out_packet)

    def close(self) -> None:
        if not self._copy:
            for out_packet in self._out.encode(None):
                self._output.mux(out_packet)
        if self._source:
            self._source.close()


def _format_for(path: Path) -> str:
    """The muxer for the output's extension (``.mp4`` → mp4, ``.mkv`` → matroska …)."""
    suffix = path.suffix.lower().lstrip(".")
    formats = {"mp4": "mp4", "m4v": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm", "avi": "avi"}
    if suffix not in formats:
        raise UserError(f"output {path}: unsupported video extension (use .mp4, .mkv, .mov, .webm or .avi)")
    return formats[suffix]


def _even(image: np.ndarray) -> np.ndarray:
    """Pad odd widths or heights by one black pixel: yuv420p needs even dimensions."""
    height, width = image.shape[:2]
    if width % 2 == 0 and height % 2 == 0:
        return image
    return np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)))
