"""The detect_fps cap passes evenly spaced frames at the asked rate; a looping file never ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from livedroid.frames import Frame
from livedroid.service.feeds import CappedFeed, LoopingVideo
from livedroid.sources.base import Source
from tests.conftest import write_clip


class TimedFrames(Source):
    """Frames captured at ``fps`` with a little jitter, as a camera delivers them (no waiting)."""

    live = True

    def __init__(self, fps: float, seconds: float, jitter: float) -> None:
        self.fps, self.seconds, self.jitter = fps, seconds, jitter

    def frames(self) -> Iterator[Frame]:
        rng = np.random.default_rng(0)
        image = np.zeros((4, 4, 3), np.uint8)
        for index in range(round(self.fps * self.seconds)):
            yield Frame(image, index, captured_at=index / self.fps + rng.uniform(-self.jitter, self.jitter))


@pytest.mark.parametrize(
    "camera_fps, detect_fps, expected",
    [(15, 5, 5), (30, 5, 5), (25, 10, 10), (15, 15, 15), (10, 20, 10), (15, 1, 1)],
)
def test_cap_keeps_to_detect_fps(camera_fps: float, detect_fps: float, expected: float) -> None:
    feed = CappedFeed(TimedFrames(camera_fps, 20, jitter=0.004), detect_fps)
    passed = [frame.captured_at for frame in feed.frames()]
    assert len(passed) / 20 == pytest.approx(expected, rel=0.06)
    assert feed.frames_read == camera_fps * 20 and feed.capped == feed.frames_read - len(passed)
    gaps = np.diff(passed)
    assert gaps.min() >= 0.8 / detect_fps - 0.01  # evenly spaced, never bunched


def test_looping_video_plays_on_at_its_rate_with_rising_timestamps(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", frames=10, fps=30, audio=None)
    video = LoopingVideo(str(clip))
    frames = []
    for frame in video.frames():
        frames.append(frame)
        if len(frames) == 25:
            break
    video.close()
    assert video.loops == 2
    assert [f.index for f in frames] == list(range(25))
    pts = [f.pts for f in frames]
    assert pts == sorted(pts) and len(set(pts)) == 25
    elapsed = frames[-1].captured_at - frames[0].captured_at
    assert elapsed == pytest.approx(24 / 30, abs=0.15)
