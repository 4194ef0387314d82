"""The local executor: worker processes on this machine, one file and one interpreter each."""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from livedroid.batch.files import FileJob
from livedroid.batch.manifest import FAILED, Outcome
from livedroid.batch.task import BatchSettings, annotate_file
from livedroid.wording import plural


def plan_workers(backend: str, workers: int | None, threads: int | None, files: int) -> tuple[int, int | None]:
    """(worker processes, interpreter threads each), filling in what the user left unset.

    Files are independent, so TFLite gets one process per core with a one-thread interpreter: the
    cores are busy without any thread waiting on another, and no core runs two interpreter threads.
    TensorFlow (SavedModel) spreads one model over all cores (or a GPU) by itself: one process.
    """
    cores = os.cpu_count() or 1
    if workers is None:
        workers = cores if backend == "tflite" else 1
    workers = max(1, min(workers, files))
    if threads is None and backend == "tflite":
        threads = max(1, cores // workers)
    return workers, threads


class LocalPool:
    """Runs the files on ``workers`` spawned processes; ``stop()`` (from a signal handler) asks the
    files in flight to stop and drops those not started."""

    def __init__(self, settings: BatchSettings, workers: int) -> None:
        self.settings = settings
        self.workers = workers
        threads = plural(settings.threads, "interpreter thread") if settings.threads else "auto interpreter threads"
        self.description = f"{plural(workers, 'local worker process', 'local worker processes')}, {threads} each"
        context = multiprocessing.get_context("spawn")  # no forked copies of the driver's threads
        self._context = context
        self._stop = context.Event()
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True
        self._stop.set()

    def run(self, jobs: list[FileJob], on_frames: Callable[[int], None]) -> Iterator[Outcome]:
        """The outcome of each file that was started, as each one ends."""
        frames = self._context.Queue()
        with ProcessPoolExecutor(
            self.workers, mp_context=self._context, initializer=_start_worker, initargs=(self.settings, self._stop, frames)
        ) as pool:
            futures: dict[Future, FileJob] = {pool.submit(_annotate, job): job for job in jobs}
            cancelled = False
            while futures:
                finished, _ = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(frames, on_frames)
                if self._stopping and not cancelled:
                    for future in futures:
                        future.cancel()
                    cancelled = True
                for future in finished:
                    job = futures.pop(future)
                    if future.cancelled():
                        continue
                    try:
                        outcome = future.result()
                    except Exception as error:  # noqa: BLE001 - a worker died (killed, out of memory)
                        outcome = Outcome.of(job, self.settings.fingerprint(), FAILED,
                                             error=f"worker process died ({type(error).__name__}: {error})")
                    if outcome is not None:
                        yield outcome
                for future in [f for f in futures if f.cancelled()]:
                    futures.pop(future)
            _drain(frames, on_frames)


def _drain(frames: multiprocessing.Queue, on_frames: Callable[[int], None]) -> None:
    while True:
        try:
            on_frames(frames.get_nowait())
        except queue.Empty:
            return


# What a worker process holds, set once by _start_worker.
_worker: dict = {}


def _start_worker(settings: BatchSettings, stop, frames) -> None:
    # Ctrl-C reaches the whole process group: only the driver acts on it, and tells the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="livedroid: %(message)s")
    _worker.update(settings=settings, stop=stop, frames=frames)


def _annotate(job: FileJob) -> Outcome | None:
    stop = _worker["stop"]
    if stop.is_set():
        return None  # handed over just before the stop: not started, nothing to record
    return annotate_file(job, _worker["settings"], should_stop=stop.is_set, on_frames=_worker["frames"].put)
