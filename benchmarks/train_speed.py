"""Seconds a training step of the default recipe under each speed lever, side by side (issue 33).

Each lever runs ``livedroid train fit``'s own loop in a fresh process (TensorFlow's graph and
thread options are global) on the same prepared dataset, for ``--steps`` steps, alternating with
the default ``--rounds`` times so that a load change hits both alike; the figure is the median step
after the first 10 (which trace the graph and warm the input pipeline). The table in
``models/star-wars/MODEL_CARD.md`` ("Speed: the levers") came from these runs.

    .venv/bin/python benchmarks/train_speed.py                       # star-wars, every lever, ~25 min
    .venv/bin/python benchmarks/train_speed.py --levers default,stored-as-read --steps 40
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEVERS = ("default", "stored-as-read", "freeze-to-block-12", "bf16-rewrite", "threads-2-1", "input-reader", "xla")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "star-wars")
    parser.add_argument("--work", type=Path, default=Path("/tmp/livedroid-train-speed"))
    parser.add_argument("--levers", default=",".join(LEVERS), help=f"comma-separated, of {', '.join(LEVERS)}")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "train_speed.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process: time one lever
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_time_one(args.one, args.work, args.steps)))
        return 0
    _prepare(args.data, args.work)
    levers = [lever for lever in args.levers.split(",") if lever]
    results: dict[str, list] = {lever: [] for lever in levers}
    for _ in range(args.rounds):
        for lever in levers:
            child = subprocess.run(
                [sys.executable, __file__, "--one", lever, "--work", str(args.work), "--steps", str(args.steps)],
                capture_output=True, text=True,
            )
            line = child.stdout.strip().splitlines()[-1] if child.returncode == 0 and child.stdout.strip() else None
            results[lever].append(json.loads(line) if line else {"error": child.stderr.strip().splitlines()[-1][:300]})
            print(lever, results[lever][-1], flush=True)
    args.out.write_text(json.dumps({"data": str(args.data), "steps": args.steps, "results": results}, indent=2) + "\n")
    print(f"saved {args.out}")
    return 0


def _prepare(data: Path, work: Path) -> None:
    """The dataset as ``prepare`` stores it, and once more with every photo as read."""
    from livedroid.training.dataset import writer
    from livedroid.training.dataset.prepare import prepare_dataset

    if not (work / "dataset").is_dir():
        prepare_dataset(data, work / "dataset", match_label_names=True)
    if not (work / "dataset-as-read").is_dir():
        writer.STORED_SIDE_PER_INPUT_SIDE = 1000  # no photo is that large: all stored as read
        prepare_dataset(data, work / "dataset-as-read", match_label_names=True)


def _time_one(lever: str, work: Path, steps: int) -> dict:
    import shutil

    from livedroid.training import fit as fitting
    from livedroid.training.compat import tf
    from livedroid.training.dataset.prepare import PreparedDataset
    from livedroid.training.pipeline import TrainSettings, build_pipeline
    from livedroid.training.zoo import resolve_pretrained

    if lever == "threads-2-1":
        tf.config.threading.set_intra_op_parallelism_threads(2)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    if lever == "bf16-rewrite":
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
    times: list[float] = []
    make_step = fitting._train_step

    def timed_step(*args, **kwargs):
        step = make_step(*args, **kwargs)
        if lever == "xla":
            step = tf.function(step.python_function, jit_compile=True)

        def call(iterator):
            began = time.perf_counter()
            losses = {name: value.numpy() for name, value in step(iterator).items()}
            times.append(time.perf_counter() - began)
            return losses

        return call

    fitting._train_step = timed_step
    dataset = PreparedDataset.load(work / ("dataset-as-read" if lever == "stored-as-read" else "dataset"))
    start = resolve_pretrained("coco")
    config = build_pipeline(dataset, TrainSettings(steps=steps), template=start.template, checkpoint=start.prefix)
    if lever == "freeze-to-block-12":
        config.train_config.freeze_variables.append(r"(^|/)block_([6-9]|1[0-2])_")
    if lever == "input-reader":
        reader = config.train_input_reader
        reader.num_parallel_map_calls, reader.num_readers, reader.prefetch_size = 2, 1, 4
    run = work / f"run-{lever}"
    shutil.rmtree(run, ignore_errors=True)
    fitting.fit(run, config, checkpoint_every=10**9)
    return {"median_s_per_step": statistics.median(times[10:]), "steps_timed": len(times[10:])}


if __name__ == "__main__":
    sys.exit(main())
