"""The reader thread and the bounded buffer between it and inference.

Two policies, as the strongest peers do it: a file is read no faster than it is processed
(back-pressure, every frame kept); a live source always hands over its newest frame and drops
the oldest, so latency stays bounded when inference is slower than the camera.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.sources.base import Source
from livedroid.stats import Stopwatch

log = logging.getLogger(__name__)


class FrameBuffer:
    """A bounded FIFO of frames that either blocks the producer or drops its oldest frame."""

    def __init__(self, capacity: int, drop_oldest: bool) -> None:
        self.capacity = max(1, capacity)
        self.drop_oldest = drop_oldest
        self.dropped = 0
        self._frames: deque[Frame] = deque()
        self._closed = False
        self._changed = threading.Condition()

    def put(self, frame: Frame) -> bool:
        """Add a frame; False if the buffer was closed (the consumer is gone)."""
        with self._changed:
            if self.drop_oldest:
                while len(self._frames) >= self.capacity:
                    self._frames.popleft()
                    self.dropped += 1
            else:
                while len(self._frames) >= self.capacity and not self._closed:
                    self._changed.wait()
            if self._closed:
                return False
            self._frames.append(frame)
            self._changed.notify_all()
            return True

    def get_batch(self, max_size: int, wait: float = 0.0) -> list[Frame]:
        """Block for one frame, then take up to ``max_size`` that are queued or arrive within
        ``wait`` seconds. An empty list means the buffer is closed and drained."""
        with self._changed:
            while not self._frames and not self._closed:
                self._changed.wait()
            deadline = time.monotonic() + wait
            while len(self._frames) < max_size and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            batch = [self._frames.popleft() for _ in range(min(max_size, len(self._frames)))]
            self._changed.notify_all()
            return batch

    def close(self, discard: bool = False) -> None:
        """No more frames will come; consumers drain what is left, or nothing when ``discard``
        (the run was cancelled)."""
        with self._changed:
            self._closed = True
            if discard:
                self._frames.clear()
            self._changed.notify_all()

    def __len__(self) -> int:
        return len(self._frames)


class FrameReader(threading.Thread):
    """Reads ``source`` into ``buffer`` on its own thread until the source ends, ``max_frames``
    have been read, or ``stop()``."""

    def __init__(
        self,
        source: Source,
        buffer: FrameBuffer,
        max_frames: int | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        super().__init__(name="livedroid-reader", daemon=True)
        self.source = source
        self.buffer = buffer
        self.max_frames = max_frames
        self.timer = Stopwatch()
        self.frames_read = 0
        #: What ended reading early, as one line for the user: the source named, no traceback.
        self.error: UserError | None = None
        self._on_error = on_error
        self._stop_requested = threading.Event()

    def run(self) -> None:
        try:
            frames = self.source.frames()
            while not self._stop_requested.is_set() and self.frames_read != self.max_frames:
                with self.timer:
                    frame = next(frames, None)
                if frame is None:
                    break
                self.frames_read += 1
                if not self.buffer.put(frame):
                    break
        except Exception as error:  # noqa: BLE001 - reported by the pipeline, never swallowed
            log.debug("reader failed", exc_info=True)
            self.error = error if isinstance(error, UserError) else UserError(f"{self.source.description}: {error}")
            if self._on_error:
                self._on_error(self.error)
        finally:
            self.buffer.close()

    def stop(self) -> None:
        """Stop after the frame being read; frames already buffered are still processed."""
        self._stop_requested.set()
        self.source.interrupt()
