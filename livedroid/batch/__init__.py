"""Batch jobs: many files through the engine, one at a time per worker, resumable.

``livedroid batch`` finds the files (``files``), skips those the manifest shows complete
(``manifest``), and runs the rest on an executor: worker processes on this machine (``local``)
or tasks on a Ray cluster (``ray_cluster``); each file is one ``annotate_file`` (``task``).
The engine never imports this package.
"""

from livedroid.batch.files import FileJob, find_jobs
from livedroid.batch.local import LocalPool, plan_workers
from livedroid.batch.manifest import FolderLock, Manifest, Outcome
from livedroid.batch.ray_cluster import RayCluster
from livedroid.batch.runner import BatchSummary, run_batch
from livedroid.batch.task import BatchSettings, annotate_file

__all__ = [
    "BatchSettings", "BatchSummary", "FileJob", "FolderLock", "LocalPool", "Manifest", "Outcome", "RayCluster",
    "annotate_file", "find_jobs", "plan_workers", "run_batch",
]
