"""Time stamps in presentation order for every file: never backwards, in the JSON Lines, the
events and the annotated video alike, even where a container stamps pictures in decode order."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from livedroid.sources import VideoSource
from tests.conftest import probe, run_cli, shared_path

FPS = 25
FRAMES = 30


def decode_order_clip(path: Path) -> Path:
    """MPEG-4 Part 2 with B-frames whose packets carry their decode time as presentation time:
    what the AVI demuxer gives for packed B-frames (mmaction2's test.avi), made here in Matroska,
    whose demuxer keeps the stamps as written."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS, options={"bf": "2"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"

        def mux(packets: list[av.Packet]) -> None:
            for packet in packets:
                packet.pts = packet.dts
                container.mux(packet)

        for index in range(FRAMES):
            image = np.zeros((48, 64, 3), np.uint8)
            image[:, 2 * index] = 255  # a bar moving right: each picture knows its place
            picture = av.VideoFrame.from_ndarray(image, format="rgb24")
            picture.pts = index
            mux(stream.encode(picture))
        mux(stream.encode())
    return path


def test_decode_order_stamps_come_out_in_presentation_order(tmp_path: Path) -> None:
    clip = decode_order_clip(tmp_path / "b-frames.mkv")
    with av.open(str(clip)) as container:
        raw = [picture.time for picture in container.decode(video=0)]
    assert sum(later < earlier for earlier, later in zip(raw, raw[1:])) >= 5  # the container's own: backwards
    source = VideoSource(str(clip))
    frames = list(source.frames())
    assert [round(frame.timestamp, 3) for frame in frames] == [round(i / FPS, 3) for i in range(FRAMES)]
    bars = [int(np.argmax(frame.image[24, :, 0])) for frame in frames]
    assert bars == [2 * i for i in range(FRAMES)]  # each picture kept its own place


def test_an_avi_with_packed_b_frames_plays_forward_as_typed(tmp_path: Path) -> None:
    """Before: 54 of its 164 records were stamped earlier than the record before."""
    clip = shared_path("videos/mmaction2_tests_data_test.avi")
    result = run_cli("run", str(clip), "--jsonl", "out.jsonl", "-o", "out.mp4", "--zone", "all=0,0,1,0,1,1,0,1",
                     "--events", "events.jsonl", "--no-progress", "-t", "0.3", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    stamps = [json.loads(line)["timestamp"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(stamps) == 164 and all(later > earlier for earlier, later in zip(stamps, stamps[1:]))
    assert stamps == pytest.approx([(i + 1) / 25 for i in range(164)])
    assert probe(tmp_path / "out.mp4")["pts"] == pytest.approx(stamps, abs=1e-3)
    events = [json.loads(line)["time"] for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert events and events == sorted(events) and set(events) <= {round(stamp, 3) for stamp in stamps}
