"""The Ray executor: one task per file on a Ray cluster (or a local Ray instance).

Ray schedules the tasks over the nodes' CPUs (and GPUs, for the SavedModel backend) and runs a
task again when the worker process running it dies (``max_retries``). Every node must see the
inputs, the model and the output folder at the same paths (shared storage).
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from livedroid.batch.files import FileJob
from livedroid.batch.manifest import FAILED, INTERRUPTED, Outcome
from livedroid.batch.task import BatchSettings, annotate_file
from livedroid.errors import UserError


class RayCluster:
    """Runs the files as Ray tasks on the cluster at ``address`` (``auto``, ``local`` or host:port)."""

    def __init__(self, address: str, settings: BatchSettings, *, retries: int = 3, gpus: float | None = None) -> None:
        self.address = address
        self.settings = settings
        self.retries = retries
        self.gpus = gpus
        self.description = f"Ray ({address})"
        self._stopping = False
        _check_reachable(address)  # a wrong address fails now, before any progress bar

    def stop(self) -> None:
        self._stopping = True

    def run(self, jobs: list[FileJob], on_frames: Callable[[int], None]) -> Iterator[Outcome]:
        ray = _connect(self.address)
        try:
            yield from self._run(ray, jobs, on_frames)
        finally:
            ray.shutdown()

    def _run(self, ray, jobs: list[FileJob], on_frames: Callable[[int], None]) -> Iterator[Outcome]:
        gpus = self.gpus
        if gpus is None:  # TensorFlow takes a GPU when the cluster has some; TFLite runs on CPUs
            gpus = 1 if self.settings.backend == "savedmodel" and ray.cluster_resources().get("GPU", 0) else 0
        task = ray.remote(_annotate_task).options(
            num_cpus=self.settings.threads or 1, num_gpus=gpus, max_retries=self.retries, retry_exceptions=False
        )
        refs = {task.remote(job, self.settings): job for job in jobs}
        cancelled = False
        fingerprint = self.settings.fingerprint()
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
            if self._stopping and not cancelled:
                for ref in refs:
                    ray.cancel(ref)  # running tasks get a KeyboardInterrupt: their outputs stay .partial
                cancelled = True
            for ref in ready:
                job = refs.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.TaskCancelledError:
                    if not _started(job):
                        continue
                    outcome = Outcome.of(job, fingerprint, INTERRUPTED)
                except ray.exceptions.RayError as error:
                    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                    outcome = Outcome.of(job, fingerprint, FAILED,
                                         error=f"Ray task failed after {self.retries} retries ({type(error).__name__}: {reason})")
                on_frames(outcome.frames)
                yield outcome


def _annotate_task(job: FileJob, settings: BatchSettings) -> Outcome:
    """The Ray task: runs in a Ray worker process on any node."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return annotate_file(job, settings)


def _started(job: FileJob) -> bool:
    return any(path.with_name(path.name + ".partial").exists() for path in (job.video, job.jsonl) if path)


def _connect(address: str):
    """``ray`` connected to the cluster, or one clear line saying why not."""
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'livedroid[ray]'") from None
    options = dict(logging_level=logging.ERROR, include_dashboard=False, configure_logging=True)
    try:
        if address == "local":
            ray.init(address="local", num_cpus=os.cpu_count() or 1, **options)  # a new one, even beside a running cluster
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise UserError(f"--ray {address}: cannot connect to a Ray cluster ({str(error).strip().splitlines()[0]})") from None
    return ray


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail at once on a HOST:PORT nobody listens on (ray.init would keep retrying for minutes)."""
    if address == "local":
        return
    if address == "auto":  # where ray.init(address="auto") looks: $RAY_ADDRESS, then the node's own cluster
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        address = os.environ.get("RAY_ADDRESS") or (current.read_text().strip() if current.exists() else "")
        if not address:
            raise UserError("--ray auto: no Ray cluster on this node (start one with 'ray start --head', "
                            "or give --ray HOST:PORT, or --ray local)")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray {address}: expected auto, local, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise UserError(f"--ray {address}: cannot connect to a Ray cluster ({error.strerror or error})") from None
