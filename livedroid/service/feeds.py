"""What each camera feeds its pipeline: a file played as a camera, and the detect_fps cap."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from livedroid.frames import Frame
from livedroid.service.rates import RateMeter
from livedroid.sources.audio import AudioTap
from livedroid.sources.base import Source
from livedroid.sources.stream import MICROSECONDS
from livedroid.sources.video import VideoSource


#: How late a looping file's frame may be before its cadence starts again from now.
CATCH_UP_S = 0.25


class LoopingVideo(Source):
    """A video file played as a live camera: at its own frame rate, from the start again at its
    end, stamped with wall-clock time like a stream (so recordings stay monotonic)."""

    live = True
    time_base = MICROSECONDS

    def __init__(self, path: str) -> None:
        self.spec = path
        self._video = VideoSource(path)
        self.description = self._video.description
        self.fps = self._video.fps or 25.0
        self.size = self._video.size
        self.loops = 0
        self._interrupted = threading.Event()

    def frames(self) -> Iterator[Frame]:
        origin, start, index = time.monotonic(), None, 0
        while not self._interrupted.is_set():
            played = 0
            for frame in self._video.frames():
                now = time.monotonic()
                if start is None or now - (start + index / self.fps) > CATCH_UP_S:
                    start = now - index / self.fps  # (re)anchor the cadence: late frames do not burst
                if self._interrupted.wait(max(0.0, start + index / self.fps - now)):
                    return
                now = time.monotonic()
                if self.audio is not None:
                    self.audio.sync(frame.timestamp or 0.0, now)
                yield Frame(frame.image, index, pts=round((now - origin) * 1_000_000), time_base=MICROSECONDS, captured_at=now)
                index += 1
                played += 1
            if not played:
                return
            self._video.close()
            self._video = VideoSource(self.spec)
            if self.audio is not None:
                self._video.tap_audio(self.audio)
                self.audio.restart()
            self.loops += 1

    def tap_audio(self, tap: AudioTap | None = None) -> AudioTap | None:
        self.audio = self._video.tap_audio(tap)
        return self.audio

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        self._video.close()


class CappedFeed(Source):
    """``source`` with at most ``detect_fps`` frames a second passed on (evenly spaced, the rest
    skipped before they cost anything); counts what the camera delivered."""

    live = True

    def __init__(self, source: Source, detect_fps: float, reading: RateMeter | None = None) -> None:
        self.source = source
        self.reading = reading
        self.interval = 1.0 / detect_fps
        self.description = source.description
        self.fps = source.fps
        self.size = source.size
        self.frames_read = 0
        self.capped = 0
        self.last_frame_at: float | None = None

    @property
    def time_base(self):  # a stream sets its own after each reconnect
        return self.source.time_base

    @property
    def audio(self) -> AudioTap | None:
        return self.source.audio

    @property
    def skipped(self) -> int:
        return self.source.skipped

    @property
    def reconnects(self) -> int:
        return getattr(self.source, "reconnects", 0)

    def frames(self) -> Iterator[Frame]:
        due = None
        for frame in self.source.frames():
            self.frames_read += 1
            if self.reading is not None:
                self.reading.tick()
            now = self.last_frame_at = frame.captured_at or time.monotonic()
            if due is not None and now < due - 0.2 * self.interval:  # a little early is on time (jitter)
                self.capped += 1
                continue
            # Keep the cadence; after a gap (a reconnect) start it again rather than burst.
            due = now + self.interval if due is None or now - due > self.interval else due + self.interval
            yield frame

    def interrupt(self) -> None:
        self.source.interrupt()

    def close(self) -> None:
        self.source.close()
