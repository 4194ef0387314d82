"""A camera's recording in ``livedroid serve``: closed segments of ``segment_seconds`` that each
play on their own (an MP4 from a keyframe, its index written when it closes), listed in the
folder's RecordingIndex. A kill -9, a power cut or a full disk loses at most the segment being
written. A recording that cannot be written turns itself off and tries again later (with
back-off): it never stops the camera's detection or live view. ``record: motion|objects|events``
records the same way and deletes, as soon as it can tell, each segment that no segment with such
a mark is within the pre- and post-capture seconds of (CaptureWindow), as Frigate's retain modes.

    recordings/door/2026-12-05/door-20261205-130501-250.mp4   (+ recordings/index.sqlite)
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import av
import numpy as np

from livedroid.detections import Detections
from livedroid.errors import UserError
from livedroid.frames import Frame
from livedroid.service.backoff import Backoff
from livedroid.service.recording_index import RecordingIndex, Segment
from livedroid.sinks.base import Sink
from livedroid.sinks.video import VideoSink
from livedroid.sources.audio import AudioTap
from livedroid.sources.stream import MICROSECONDS

log = logging.getLogger("livedroid")

#: Seconds before a failed recording tries again (doubling up to the max while it keeps failing).
RETRY_FIRST_S, RETRY_MAX_S = 2.0, 120.0
#: What a recording that cannot be written raises: a full or read-only disk, a folder that cannot
#: be made, an encoder or index that refuses.
WRITE_FAILURES = (OSError, av.FFmpegError, UserError, sqlite3.Error)
#: The free-space floor of a recordings folder's disk unless set: the smaller of 1 GB and 5 % of
#: the disk. Frigate keeps "an hour of recording", which needs the bitrate first; 1 GB is more than
#: an hour of a 2 Mbit/s camera, and 5 % keeps a small disk (an SD card) usable.
DEFAULT_MIN_FREE_GB, DEFAULT_MIN_FREE_SHARE = 1.0, 0.05
#: Whatever the floor, it leaves room for this many segments the size of the camera's last one: on a
#: small disk (or with a floor set low) the next segment must still fit, or recording would stop.
ROOM_FOR_SEGMENTS = 3
DELETION_REASONS = ("size", "free_space", "age", "outside_capture")
#: A frame moved when its pixels differ from the previous frame's by more than this on average (of 255).
MOTION_LEVELS = 2.0
#: The longest wait between two retention passes.
RETENTION_EVERY_S = 60.0


class _OpenSegment:
    """The segment being written: a VideoSink with timestamps from its own first frame, and the
    camera's audio of the same seconds (as ``livedroid run`` keeps a file's audio)."""

    def __init__(self, path: Path, relative: str, first: Frame, fps: float | None, events: int,
                 audio: AudioTap | None) -> None:
        self.relative = relative
        self.audio = audio
        self.video = VideoSink(path, fps=fps, time_base=MICROSECONDS, audio_like=audio.stream if audio else None)
        self.began = first.captured_at
        self.start = _wall_time(first.captured_at)
        self.end = self.start
        self.last = self.began
        self.objects = self.motion = 0
        self._previous: np.ndarray | None = None
        self.events_before = events
        self._audio_end = 0  # in the audio's time base

    def write(self, frame: Frame, detections: Detections, scene: np.ndarray | None) -> None:
        # A new VideoSink is a new encoder: the segment's first frame is a keyframe.
        pts = round((frame.captured_at - self.began) * 1_000_000)
        self.video.write(replace(frame, pts=pts, time_base=MICROSECONDS), detections, scene)
        self.end = _wall_time(frame.captured_at) + 1 / float(self.video.fps)
        self.objects += len(detections) > 0
        self.motion += self._moved(frame.image)
        self.last = frame.captured_at
        self.write_audio(frame.captured_at)

    def _moved(self, image: np.ndarray) -> bool:
        """Whether the picture differs from the one before: a mean difference over a sparse grid
        of pixels (a few thousand), enough to tell a still scene from one where something moves."""
        step = max(1, min(image.shape[:2]) // 48)
        small = image[::step, ::step].astype(np.int16)
        moved = self._previous is not None and small.shape == self._previous.shape and \
            float(np.abs(small - self._previous).mean()) > MOTION_LEVELS
        self._previous = small
        return moved

    def write_audio(self, until: float) -> None:
        """The audio that plays before ``until`` (on the frames' clock), from this segment's start:
        what came before belongs to no segment (recording was off, or it is the previous one's)."""
        if self.audio is None:
            return
        for taken in self.audio.take_until(until):
            if taken.at >= self.began:
                packet = taken.packet
                # Its time on the frames' clock jitters by a few ms: never before the previous one's end.
                packet.pts = packet.dts = max(round((taken.at - self.began) / packet.time_base), self._audio_end)
                self._audio_end = packet.pts + (packet.duration or 1)
                self.video.write_audio(packet)


class CaptureWindow:
    """Which closed segments ``record: motion|objects|events`` keeps: those within ``pre`` seconds
    before or ``post`` seconds after a segment marked with what it records around.

    Pre-capture needs no frame buffer: every segment is written (crash-safe as ever) and one is
    decided only once the latest closed segment starts over ``pre`` s after it ends, when no later
    mark can reach back to it. The window is a segment's length at its finest: short segments make
    tight clips. Segments still undecided when the camera stops are kept.
    """

    def __init__(self, mode: str, pre: float, post: float) -> None:
        self.mode, self.pre, self.post = mode, pre, post
        self._pending: list[Segment] = []
        self._marks: deque[tuple[float, float]] = deque()  # (start, end) of recent marked segments

    def marked(self, segment: Segment) -> bool:
        if self.mode == "events":
            return segment.events > 0
        if self.mode == "objects":
            return segment.objects > 0 or segment.events > 0
        return segment.kind != "continuous"  # motion: movement, objects or events

    def closed(self, segment: Segment) -> list[Segment]:
        """Take the newest closed segment; return the earlier ones now known to lie outside every window."""
        if self.marked(segment):
            self._marks.append((segment.start, segment.end))
        self._pending.append(segment)
        decided = [s for s in self._pending if segment.start - s.end > self.pre]
        self._pending = [s for s in self._pending if s not in decided]
        dropped = [s for s in decided if not any(start - self.pre < s.end and s.start < end + self.post
                                                 for start, end in self._marks)]
        oldest = min((s.start for s in self._pending), default=segment.start)
        while self._marks and self._marks[0][1] + self.post < oldest:
            self._marks.popleft()
        return dropped


class SegmentRecorder(Sink):
    """One camera's recording, kept for the camera's whole life (its pipeline is made anew on
    every reconnect, and closes this at its end: the segment in flight is closed then)."""

    needs_scene = True

    def __init__(self, camera: str, folder: Path, *, segment_seconds: float, max_gb: float | None = None, max_share: float | None = None,
                 min_free_gb: float | None = None, events: Callable[[], int] = lambda: 0,
                 capture: CaptureWindow | None = None) -> None:
        self.camera = camera
        self.folder = Path(folder)
        self.segment_seconds = segment_seconds
        #: the folder's size cap: after each closed segment, the oldest segments beyond it are deleted
        self.max_gb = max_gb
        #: the same cap as a share of the folder's disk (with both, the smaller)
        self.max_share = max_share
        #: the folder's free-space floor (None: the smaller of 1 GB and 5 % of its disk)
        self.min_free_gb = min_free_gb
        #: segments deleted, by why: the folder over its cap, its disk under the floor, their age
        self.deleted = dict.fromkeys(DELETION_REASONS, 0)
        self.index = RecordingIndex(self.folder)
        #: record only around motion, objects or events (None: continuously)
        self.capture = capture
        #: The camera's frame rate, set before each connection (the encoder's nominal rate).
        self.fps: float | None = None
        #: The camera's audio, set before each connection (None: a source without audio).
        self.audio: AudioTap | None = None
        self._events = events
        self._segment: _OpenSegment | None = None
        self._retry = Backoff(RETRY_FIRST_S, RETRY_MAX_S)
        self._retry_at = 0.0
        self.state = "recording"
        self.error: str | None = None
        self.segments = 0
        self.failures = 0
        self._last_bytes = 0  # the size of the last closed segment: the floor keeps room for the next

    def write(self, frame: Frame, detections: Detections, scene: np.ndarray | None) -> None:
        if self._segment is not None and frame.captured_at - self._segment.began >= self.segment_seconds:
            if self._guarded(self._segment.write_audio, frame.captured_at):
                self._close_segment()
        if self._segment is None:
            if time.monotonic() < self._retry_at:
                return  # recording is off until the next try
            self._guarded(self._open_segment, frame)
        if self._segment is not None:
            self._guarded(self._segment.write, frame, detections, scene)

    def close(self, complete: bool = True) -> None:
        """Close the segment in flight: what was recorded plays, whatever ended the connection."""
        if self._segment is not None and self._guarded(self._segment.write_audio,
                                                       self._segment.last + 1 / float(self._segment.video.fps)):
            self._close_segment()

    def _open_segment(self, frame: Frame) -> None:
        now = datetime.now()
        relative = f"{self.camera}/{now:%Y-%m-%d}/{self.camera}-{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}.mp4"
        self._segment = _OpenSegment(self.folder / relative, relative, frame, self.fps, self._events(), self.audio)

    def _close_segment(self) -> None:
        segment, self._segment = self._segment, None
        if not self._guarded(segment.video.close):
            segment.video.discard()
            return
        path = self.folder / segment.relative
        closed = Segment(self.camera, segment.start, segment.end, segment.relative, path.stat().st_size,
                         segment.objects, self._events() - segment.events_before, segment.motion)
        if not self._guarded(self.index.add, closed):
            return
        if self.capture is not None:
            self._guarded(self._drop_outside_capture, closed)
        self._last_bytes = closed.bytes
        self._guarded(self._keep_within_limits)
        self.segments += 1
        self._retry.reset()
        if self.state == "recording_error":
            log.warning("camera %s: recording again", self.camera)
            self.state, self.error = "recording", None

    def _drop_outside_capture(self, closed: Segment) -> None:
        outside = self.capture.closed(closed)
        if outside:
            self.index.remove(outside)
            self.deleted["outside_capture"] += len(outside)
            log.debug("camera %s: deleted %d segments with no %s within %g s: %s", self.camera, len(outside),
                      self.capture.mode, max(self.capture.pre, self.capture.post), ", ".join(s.path for s in outside))

    def _keep_within_limits(self) -> None:
        """The oldest segments go while the folder holds over its cap or its disk has less free
        than the floor: recording never stops because the disk is full."""
        disk = shutil.disk_usage(self.folder)
        floor = self.min_free_gb * 1e9 if self.min_free_gb is not None else min(DEFAULT_MIN_FREE_GB * 1e9, DEFAULT_MIN_FREE_SHARE * disk.total)
        floor = max(floor, ROOM_FOR_SEGMENTS * self._last_bytes)
        caps = [(self.max_gb * 1e9, f"holds over {self.max_gb:g} GB")] if self.max_gb is not None else []
        if self.max_share is not None:
            caps.append((self.max_share * disk.total, f"holds over {self.max_share:.0%} of its disk ({self.max_share * disk.total / 1e9:.3g} GB)"))
        cap, over = min(caps) if caps else (None, "")
        removed = self.index.prune(None if cap is None else round(cap), round(floor - disk.free))
        for _, reason in removed:
            self.deleted[reason] += 1
        if removed:
            segments = [segment for segment, _ in removed]
            why = (over if removed[0][1] == "size"
                   else f"has under {floor / 1e9:g} GB free on its disk" if floor >= 1e8
                   else f"has under {floor / 1e6:.1f} MB free on its disk")
            log.info("camera %s: %s %s: deleted the %s (%.1f MB): %s%s", self.camera, self.folder, why,
                     "oldest segment" if len(segments) == 1 else f"{len(segments)} oldest segments",
                     sum(s.bytes for s in segments) / 1e6, segments[0].path,
                     f" … {segments[-1].path}" if len(segments) > 1 else "")

    def _guarded(self, step: Callable, *arguments: object) -> bool:
        """Run one step of the recording; False after a write failure, which turns recording off."""
        try:
            step(*arguments)
        except WRITE_FAILURES as error:
            self._fail(error)
            return False
        return True

    def _fail(self, error: BaseException) -> None:
        reason = getattr(error, "strerror", None) or str(error)
        if reason.startswith("cannot write "):  # what is wrong, not which segment (a new name each try)
            reason = reason.split(": ", 1)[-1]
        delay = self._retry.next()
        self.failures += 1
        if (self.state, self.error) != ("recording_error", reason):
            log.warning("camera %s: recording off (%s); detection goes on, recording tries again in %g s and later",
                        self.camera, reason, delay)
        self.state, self.error = "recording_error", reason
        self._retry_at = time.monotonic() + delay
        if self._segment is not None:
            self._segment.video.discard()
            self._segment = None
        if getattr(error, "errno", None) == errno.ENOSPC or reason == os.strerror(errno.ENOSPC):  # (a UserError has no errno)
            # Filled by something else since the last pass (another program, a burst of segments):
            # make room now, so that the retry finds it, rather than after a segment that cannot close.
            try:
                self._keep_within_limits()
            except WRITE_FAILURES as pruning:
                log.warning("camera %s: cannot make room in %s (%s)", self.camera, self.folder, pruning)

    def stats(self) -> dict:
        return {"recording": self.state, "recording_error": self.error,
                "segments_recorded": self.segments, "recording_failures": self.failures,
                "segments_deleted": sum(self.deleted.values()), "deletions": dict(self.deleted),
                "recordings": str(self.folder), **self._kept()}

    def _kept(self) -> dict:
        try:
            return self.index.summary(self.camera)
        except sqlite3.Error:  # an index that cannot be read says nothing, the rest still answers
            return {"segments_kept": None, "recordings_bytes": None, "oldest_kept": None}


class Retention:
    """Retention by age: one background thread for every recording camera, that every
    ``interval`` s deletes at most ``limit`` segments (oldest first) older than their camera keeps
    their kind, only rows of livedroid's own index (never the segment in flight: it has none),
    and says what it deleted in one line."""

    def __init__(self, recorders: list[SegmentRecorder], keep: dict[str, dict[str, float]], *, limit: int = 100) -> None:
        self.keep = {camera: seconds for camera, seconds in keep.items() if seconds}
        self.recorders = {recorder.camera: recorder for recorder in recorders if recorder.camera in self.keep}
        self.limit = limit
        #: often enough for the shortest keep (tests use seconds), at most a minute apart
        self.interval = min([RETENTION_EVERY_S] + [min(s.values()) / 2 for s in self.keep.values()])
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="livedroid-retention", daemon=True)

    def start(self) -> None:
        if self.recorders:
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            for folder in {recorder.folder for recorder in self.recorders.values()}:
                keep = {camera: self.keep[camera] for camera, r in self.recorders.items() if r.folder == folder}
                try:
                    self.expire(folder, keep)
                except WRITE_FAILURES as error:  # tried again next pass
                    log.warning("recordings %s: retention pass failed (%s)", folder, getattr(error, "strerror", None) or error)

    def expire(self, folder: Path, keep: dict[str, dict[str, float]]) -> None:
        removed = RecordingIndex(folder).expire(keep, time.time(), self.limit)
        for segment in removed:
            self.recorders[segment.camera].deleted["age"] += 1
        if removed:
            kinds = Counter(segment.kind for segment in removed)
            log.info("recordings %s: deleted %d segments past their age (%s; %.1f MB): %s … %s", folder, len(removed),
                     ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())),
                     sum(segment.bytes for segment in removed) / 1e6, removed[0].path, removed[-1].path)


def _wall_time(monotonic: float) -> float:
    """Seconds since 1970 of a ``time.monotonic()`` reading in the recent past."""
    return time.time() - (time.monotonic() - monotonic)
