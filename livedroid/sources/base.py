"""What every frame source offers the pipeline."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from fractions import Fraction

from livedroid.frames import Frame
from livedroid.sources.audio import AudioTap


class Source(ABC):
    """A producer of frames, read by one reader thread.

    ``live`` sources (cameras, network streams) run at their own pace: the pipeline keeps only the
    newest frame for them. Files are read as fast as the pipeline consumes, and nothing is dropped.
    """

    live: bool = False
    #: Safe to print: credentials are masked.
    description: str = ""
    fps: float | None = None
    frame_count: int | None = None
    #: (width, height) of the frames when known before reading (zones are checked against it).
    size: tuple[int, int] | None = None
    #: The time base of ``Frame.pts``; the video sink writes the same timestamps in it.
    time_base: Fraction | None = None
    #: A media file whose audio the video sink may copy, or None.
    audio_path: str | None = None
    #: The audio as it is read, once ``tap_audio`` was called (live sources whose audio is kept).
    audio: AudioTap | None = None
    #: Frames that could not be decoded and were skipped.
    skipped: int = 0

    @abstractmethod
    def frames(self) -> Iterator[Frame]:
        """Yield frames in order until the source ends."""

    def tap_audio(self, tap: AudioTap | None = None) -> AudioTap | None:
        """Keep the audio as it is read in ``audio`` (``tap``, or a new one); None without audio."""
        return None

    def interrupt(self) -> None:
        """Called from another thread to cut short waits (reconnects) when the run stops."""

    def close(self) -> None:
        """Release the device, file or connection."""

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
