"""How long the pipeline's work took (stopwatches, latency percentiles) and the end-of-run summary."""

from __future__ import annotations

import threading
from collections.abc import Iterable
import time
from dataclasses import dataclass

from livedroid.wording import plural


def percentiles_ms(ages: Iterable[float]) -> tuple[float, float] | None:
    """(p50, p95) of frame ages (seconds) in milliseconds; None when there are none."""
    ordered = sorted(ages)
    if not ordered:
        return None
    return 1000 * ordered[len(ordered) // 2], 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


class Stopwatch:
    """Accumulates the wall time of one kind of work (decode, inference, writing): ``with timer: work()`` or ``timer.add(s, n)``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.count = 0
        self._start = 0.0
        self._lock = threading.Lock()  # several inference threads add to one timer

    def __enter__(self) -> "Stopwatch":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.add(time.perf_counter() - self._start)

    def add(self, seconds: float, count: int = 1) -> None:
        with self._lock:
            self.seconds += seconds
            self.count += count

    @property
    def mean_ms(self) -> float:
        return 1000.0 * self.seconds / self.count if self.count else 0.0


@dataclass
class RunSummary:
    """What a run did, printed at its end and returned to callers (tests, the benchmark)."""

    frames_read: int
    frames_processed: int
    frames_dropped: int
    frames_skipped: int
    seconds: float
    decode_ms: float
    inference_ms: float
    write_ms: float
    interrupted: bool = False
    #: (p50, p95) frame age from capture to written, for live sources.
    latency_ms: tuple[float, float] | None = None

    @property
    def fps(self) -> float:
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        text = (
            f"{plural(self.frames_read, 'frame')} read, {self.frames_processed} processed, "
            f"{self.frames_dropped} dropped"
        )
        if self.frames_skipped:
            text += f", {self.frames_skipped} undecodable skipped"
        text += (
            f" in {self.seconds:.1f} s ({self.fps:.1f} fps) | per frame: decode {self.decode_ms:.1f} ms, "
            f"inference {self.inference_ms:.1f} ms, annotate+write {self.write_ms:.1f} ms"
        )
        if self.latency_ms:
            text += f" | latency p50 {self.latency_ms[0]:.0f} ms, p95 {self.latency_ms[1]:.0f} ms"
        return text + (" | interrupted" if self.interrupted else "")
