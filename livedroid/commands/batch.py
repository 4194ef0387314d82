"""``livedroid batch``: many video files through the engine, resumable, on all cores or on Ray."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from livedroid.commands.options import add_detection_options, add_encoder_options, verbose_flag
from livedroid.privacy import add_privacy_options
from livedroid.settings import COUNT_OR_ZERO, GPUS, option

log = logging.getLogger("livedroid")

BATCH_EXAMPLES = """\
examples:
  livedroid batch recordings/ --out annotated/            every video under recordings/, on all cores
  livedroid batch 'season/*.mp4' --out out/ --no-video    detections only (out/NAME.jsonl)
  livedroid batch /shared/archive --out /shared/out --ray auto   on the Ray cluster this node belongs to

A rerun with the same --out skips the files already complete (checked against DIR/manifest.jsonl:
sizes and frame counts) and redoes the rest, damaged files (incomplete) included. Exit status: 0 all
complete, 1 some file failed or was damaged (see the manifest), 2 a usage error or a full disk
(one line says which), 130 stopped by Ctrl-C or SIGTERM.
"""


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    batch = commands.add_parser(
        "batch",
        parents=[verbose_flag()],
        help="annotate many video files: resumable, on all cores or on a Ray cluster",
        description=(
            "Annotate every INPUT (video files, folders searched recursively, globs) into "
            "DIR/NAME-detections.mp4 (H.264, the input's timestamps and audio) and DIR/NAME.jsonl, "
            "as `run` does for one file. Files run in parallel worker processes, or as Ray tasks with "
            "--ray. A file that fails is recorded and the others go on. Ctrl-C stops the files in "
            "flight (left as .partial, redone next time); finished files stay complete."
        ),
        epilog=BATCH_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("inputs", nargs="+", metavar="INPUT", help="video file, folder or glob (quote globs)")
    batch.add_argument("--out", required=True, metavar="DIR", help="output folder; also holds manifest.jsonl")
    add_detection_options(
        batch, "worker processes, one file and one interpreter each (default: one per core for TFLite, else 1)"
    )
    add_privacy_options(batch)
    out = batch.add_argument_group("outputs")
    out.add_argument("--no-video", action="store_true", help="detections only: no annotated videos")
    out.add_argument("--overwrite", action="store_true", help="redo every file, even those already complete")
    add_encoder_options(out)
    out.add_argument("--no-progress", action="store_true", help="no progress bars")
    cluster = batch.add_argument_group("Ray (pip install 'livedroid[ray]')")
    cluster.add_argument(
        "--ray", metavar="ADDRESS",
        help="run one Ray task per file: 'auto' (the cluster of this node), 'local' (start Ray here), "
        "or HOST:PORT / ray://HOST:10001. Inputs, model and --out must be on storage every node shares",
    )
    cluster.add_argument("--retries", type=option(COUNT_OR_ZERO), default=3, metavar="N", help="times a file is retried when its Ray worker dies (default 3)")
    cluster.add_argument("--gpus-per-file", type=option(GPUS), metavar="G", help="GPUs each Ray task asks for (default: 1 for SavedModels when the cluster has GPUs, else 0)")
    batch.set_defaults(handler=command)
    return batch


def command(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from livedroid.batch import BatchSettings, FolderLock, LocalPool, RayCluster, find_jobs, plan_workers, run_batch
    from livedroid.detectors import backend_for, load_detector
    from livedroid.engine import EngineSettings
    from livedroid.models import resolve_model

    engine = EngineSettings.from_args(args)
    model_path = resolve_model(engine.model).resolve()
    backend = engine.backend or backend_for(model_path)
    if backend == "tflite" or engine.classes or engine.privacy.classes:  # check the model and class names once, before any file starts
        engine.check_labels(load_detector(model_path, engine.backend, device=engine.device, labels=engine.labels, threads=1).labels)
    jobs = find_jobs(args.inputs, Path(args.out), video=not args.no_video)
    workers, threads = plan_workers(backend, args.workers, args.threads, len(jobs))
    engine = replace(
        engine,
        model=str(model_path),
        labels=os.path.abspath(engine.labels) if engine.labels else None,
        threads=(args.threads or 1) if args.ray and backend == "tflite" else threads,
        workers=None,  # worker processes, not interpreters: the batch's own
        inputs=(),
    )
    settings = BatchSettings(engine, crf=args.crf, preset=args.preset, video=not args.no_video)
    if args.ray:
        executor = RayCluster(args.ray, settings, retries=max(0, args.retries), gpus=args.gpus_per_file)
    else:
        executor = LocalPool(settings, workers)
    log.info("%d files, model %s, %s", len(jobs), model_path, executor.description)
    with FolderLock(Path(args.out)):
        summary = run_batch(jobs, settings, executor, Path(args.out) / "manifest.jsonl", redo=args.overwrite,
                            progress=not args.no_progress)
    print(f"livedroid: {summary.line()}", file=sys.stderr)
    print(f"livedroid: outcomes in {Path(args.out) / 'manifest.jsonl'}", file=sys.stderr)
    return summary.exit_status
