import threading
import time

import numpy as np

from livedroid.frames import Frame
from livedroid.sources.base import Source
from livedroid.sources.reader import FrameBuffer, FrameReader


def frame(index: int) -> Frame:
    return Frame(np.zeros((2, 2, 3), np.uint8), index)


def test_live_buffer_keeps_the_newest_frames_and_counts_drops() -> None:
    buffer = FrameBuffer(2, drop_oldest=True)
    for index in range(5):
        assert buffer.put(frame(index))
    assert buffer.dropped == 3
    assert [f.index for f in buffer.get_batch(8)] == [3, 4]


def test_file_buffer_blocks_the_producer_instead_of_dropping() -> None:
    buffer = FrameBuffer(2, drop_oldest=False)
    buffer.put(frame(0))
    buffer.put(frame(1))
    third = threading.Thread(target=buffer.put, args=(frame(2),))
    third.start()
    time.sleep(0.05)
    assert third.is_alive()  # waits for room
    assert [f.index for f in buffer.get_batch(1)] == [0]
    third.join(timeout=1)
    assert not third.is_alive()
    assert [f.index for f in buffer.get_batch(8)] == [1, 2]
    assert buffer.dropped == 0


def test_get_batch_waits_briefly_for_a_full_batch() -> None:
    buffer = FrameBuffer(8, drop_oldest=False)
    buffer.put(frame(0))
    threading.Timer(0.02, buffer.put, args=(frame(1),)).start()
    assert [f.index for f in buffer.get_batch(2, wait=1.0)] == [0, 1]


def test_closed_buffer_drains_then_returns_empty() -> None:
    buffer = FrameBuffer(4, drop_oldest=False)
    buffer.put(frame(0))
    buffer.close()
    assert not buffer.put(frame(1))
    assert [f.index for f in buffer.get_batch(4)] == [0]
    assert buffer.get_batch(4) == []


class CountingSource(Source):
    def __init__(self, count: int) -> None:
        self.count = count

    def frames(self):
        for index in range(self.count):
            yield frame(index)


def test_reader_reads_everything_into_the_buffer_and_closes_it() -> None:
    buffer = FrameBuffer(100, drop_oldest=False)
    reader = FrameReader(CountingSource(10), buffer)
    reader.start()
    reader.join(timeout=5)
    assert reader.frames_read == 10
    assert [f.index for f in buffer.get_batch(100)] == list(range(10))
    assert buffer.get_batch(1) == []


def test_reader_stop_ends_an_endless_source() -> None:
    buffer = FrameBuffer(1, drop_oldest=True)
    reader = FrameReader(CountingSource(10**9), buffer)
    reader.start()
    time.sleep(0.05)
    reader.stop()
    reader.join(timeout=5)
    assert not reader.is_alive()
    assert buffer.dropped > 0
