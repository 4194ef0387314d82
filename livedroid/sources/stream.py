"""Live network streams (RTSP, RTMP, HTTP) that reconnect when the camera drops.

A clean end of the decode loop on a live URL is not the end of the stream: it is a drop to
reconnect from, with back-off, for up to ``reconnect_timeout`` seconds. Frames are stamped with
wall-clock time since the first frame, so a gap in the stream stays a gap in the output video.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from fractions import Fraction

import av

from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.sources.video import StreamRefused, VideoSource, _open_container, _reason, mask_credentials, upright

log = logging.getLogger(__name__)

MICROSECONDS = Fraction(1, 1_000_000)
_BACKOFF_START, _BACKOFF_MAX = 0.25, 5.0


class StreamSource(VideoSource):
    """A live stream read over TCP with open and read timeouts, reconnecting after drops."""

    live = True

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 10.0,
        reconnect_timeout: float = 60.0,
        interrupted: threading.Event | None = None,
    ) -> None:
        """``interrupted``: set from another thread to cut the first connect short (the caller
        holds no source to ``interrupt()`` until it is connected)."""
        self.spec = url
        self.description = mask_credentials(url)
        self.max_frames = None
        self.reconnect_timeout = reconnect_timeout
        self.reconnects = 0
        self._read_timeout = read_timeout
        self._options = {"rtsp_transport": "tcp"} if url.lower().startswith("rtsp") else {}
        self._interrupted = interrupted or threading.Event()
        container, reason = self._connect(connect_timeout)
        if container is None:
            raise UserError(f"cannot connect to {self.description}: {reason} (tried for {connect_timeout:g} s)")
        self._use(container)
        self.time_base = MICROSECONDS

    def _connect(self, seconds: float) -> tuple[av.container.InputContainer | None, str]:
        """Open the URL, retrying with back-off for ``seconds``; (None, last reason) on failure.

        Refused credentials and unknown paths are final: retrying cannot fix them.
        """
        deadline = time.monotonic() + seconds
        delay, reason = _BACKOFF_START, "no attempt"
        while not self._interrupted.is_set():
            left = deadline - time.monotonic()
            try:
                return _open_container(
                    self.spec, self.description, self._options, timeout=(max(0.5, min(left, 10.0)), self._read_timeout)
                ), ""
            except StreamRefused:
                raise
            except UserError as error:
                reason = str(error).split(": ", 1)[-1]
            left = deadline - time.monotonic()
            if left <= 0:  # tried for the whole time, as the message will say
                break
            self._interrupted.wait(min(delay, left))
            delay = min(delay * 2, _BACKOFF_MAX)
        return None, reason

    def frames(self) -> Iterator[Frame]:
        index, start = 0, None
        while True:
            try:
                for picture in self._pictures():
                    now = time.monotonic()
                    start = now if start is None else start
                    if self.audio is not None:
                        self.audio.sync(float(picture.time or 0), now)
                    yield Frame(
                        image=upright(picture),
                        index=index,
                        pts=round((now - start) * 1_000_000),
                        time_base=MICROSECONDS,
                        captured_at=now,
                    )
                    index += 1
                reason = "the stream ended"
            except (av.FFmpegError, OSError) as error:
                reason = _reason(error)
            self._container.close()
            if self._interrupted.is_set():
                return
            log.warning("%s: connection lost after frame %d (%s); reconnecting for up to %g s",
                        self.description, index, reason, self.reconnect_timeout)
            lost = time.monotonic()
            container, reason = self._connect(self.reconnect_timeout)
            if container is None:
                if not self._interrupted.is_set():
                    log.error("%s: gave up reconnecting after %g s (%s)", self.description, self.reconnect_timeout, reason)
                return
            self.reconnects += 1
            log.warning("%s: reconnected after a %.1f s gap", self.description, time.monotonic() - lost)
            self._use(container)
            self.time_base = MICROSECONDS
            if self.audio is not None:
                self.audio.restart()

    def interrupt(self) -> None:
        self._interrupted.set()
