"""A source's audio as it is read, stamped on its frames' clock, for a sink that writes it in step
with frames it receives later (``serve``'s segments: each takes the audio of its own seconds)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import av

#: Packets held when no one takes them (a recording that is off): about 45 s of AAC.
MAX_PACKETS = 2000


@dataclass
class AudioPacket:
    packet: av.Packet
    #: the ``time.monotonic()`` at which it plays, on the clock of ``Frame.captured_at``
    at: float


class AudioTap:
    """Audio packets from the reader thread to one consumer thread, oldest first, bounded.

    A packet's time in its file becomes the frames' clock through the newest frame read
    (``sync``): the demuxer interleaves audio with video, so that frame is close by. Packets read
    before any frame (or before the first frame after a ``restart``) wait for the next ``sync``.
    """

    def __init__(self, stream: av.audio.AudioStream) -> None:
        #: the input's stream, the template of an output stream that copies it
        self.stream = stream
        self._packets: deque[AudioPacket] = deque(maxlen=MAX_PACKETS)
        self._unsynced: list[av.Packet] = []
        self._offset: float | None = None
        self._lock = threading.Lock()

    def put(self, packet: av.Packet) -> None:
        if not packet.size or packet.pts is None:
            return  # the demuxer's empty flush packet
        with self._lock:
            if self._offset is None:
                self._unsynced.append(packet)
                del self._unsynced[:-MAX_PACKETS]
            else:
                self._packets.append(AudioPacket(packet, float(packet.pts * packet.time_base) + self._offset))

    def sync(self, file_seconds: float, captured_at: float) -> None:
        """A frame at ``file_seconds`` in the file was read at ``captured_at``."""
        with self._lock:
            self._offset = captured_at - file_seconds
            for packet in self._unsynced:
                self._packets.append(AudioPacket(packet, float(packet.pts * packet.time_base) + self._offset))
            self._unsynced.clear()

    def restart(self) -> None:
        """The file plays from its start again (a loop), or the stream reconnected: a new clock."""
        with self._lock:
            self._offset = None

    def take_until(self, at: float) -> list[AudioPacket]:
        """The packets that play before ``at``, oldest first (they leave the tap)."""
        taken = []
        while self._packets and self._packets[0].at < at:
            taken.append(self._packets.popleft())
        return taken
