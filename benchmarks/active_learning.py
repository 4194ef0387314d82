"""Does ``livedroid mine`` pick better frames to label than chance? The standard active-learning
simulation, on datasets whose labels we have, so the user's review is played by the ground truth.

Per dataset and seed:

1. split off the test set (raccoon: its own ``test_labels.csv``; star-wars: a seeded grouped split,
   25 %), the rest is the *pool*;
2. train the *seed model* on a random 40 % of the pool (``livedroid train prepare/fit/export``);
3. **mined arm**: ``livedroid mine`` picks K images from the rest of the pool with the seed model
   (their labels hidden: it sees a folder of bare images); the ground truth of just those is
   revealed and a model is trained on seed + picks;
4. **mined arm, told the seed set** (``mine --known SEED_IMAGES``): novelty and near-duplicates
   are measured against the photos already labelled too, as a user with a training set would run it;
5. **random arm**: the same with K random images of the rest (K = what mine picked);
6. every arm and the seed model are measured on the test set (``livedroid train eval --data``).

Every model trains from the same COCO start with the same recipe and the same (reduced) step
count. Also reported: what review of the mined picks would cost (the seed model's pre-annotations
against the truth: kept as is, moved, relabelled, deleted, added), and, from ``mine --all`` over
the whole rest of the pool, how often each signal fires on an image whose pre-annotations are
wrong, against the base rate (does the signal earn its place?).

    .venv/bin/python benchmarks/active_learning.py --steps 600 --seeds 0 --out benchmarks/results/active_learning.json

Everything runs through the ``livedroid`` command, as a user types it; the work goes to --work,
and an arm already measured there (same steps) is read back, so a rerun adds only what is new.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
LIVEDROID = str(Path(sys.executable).with_name("livedroid"))
SEED_SHARE = 0.4
KEPT_IOU = 0.85  # a pre-annotated box a reviewer keeps as is
SAME_OBJECT_IOU = 0.3  # below this a box is on no object of the truth
ARMS = ("mined", "mined_known", "random")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="raccoon,star-wars")
    parser.add_argument("--steps", type=int, default=600, help="training steps of every model (default 600; the recipe's is 1500)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--budget", type=float, default=0.2, help="K as a share of the pool (default 0.2)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"the arms beside the seed model (default {','.join(ARMS)})")
    parser.add_argument("--work", type=Path, default=Path("/tmp/livedroid-active-learning"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "active_learning.json")
    args = parser.parse_args()
    arms = args.arms.split(",")
    if unknown := set(arms) - set(ARMS):
        parser.error(f"unknown arm {', '.join(sorted(unknown))} (arms: {', '.join(ARMS)})")
    # Runs of other datasets and seeds already in --out stay: a run adds seeds to the table.
    results = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else []
    for name in args.datasets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            result = simulate(name, seed, args.steps, args.budget, args.work / f"{name}-seed{seed}", arms)
            results = [r for r in results if (r["dataset"], r["seed"]) != (name, seed)] + [result]
            results.sort(key=lambda r: (r["dataset"], r["seed"]))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print_table(results)
    return 0


# The datasets -----------------------------------------------------------------------------------


def load(name: str, seed: int) -> tuple[list, list, dict[int, str]]:
    """(pool, test, label map) as validated images with their canonical class names."""
    from livedroid.labels import load_labels
    from livedroid.training.dataset.class_names import apply_label_map
    from livedroid.training.dataset.prepare import read_annotations
    from livedroid.training.dataset.split import grouped_split
    from livedroid.training.dataset.validate import validate_images

    def read(path: Path, images: Path | None, label_map: dict[int, str] | None) -> tuple[list, dict[int, str]]:
        problems: list = []
        annotated = read_annotations(path, images, problems)
        label_map = apply_label_map(annotated, label_map, {}, True, problems)
        return validate_images(annotated, problems), label_map

    if name == "raccoon":
        folder = SHARED / "raccoon"
        pool, label_map = read(folder / "data" / "train_labels.csv", folder / "images", None)
        test, _ = read(folder / "data" / "test_labels.csv", folder / "images", label_map)
        return pool, test, label_map
    if name == "star-wars":
        folder = SHARED / "star-wars"
        everything, label_map = read(folder, None, load_labels(folder / "label_map.pbtxt"))
        pool, test, _ = grouped_split(everything, 0.25, seed)  # near-duplicates stay on one side
        return pool, test, label_map
    raise SystemExit(f"unknown dataset {name}")


def write_set(folder: Path, images: list, label_map: dict[int, str], with_labels: bool = True) -> Path:
    """images/ (+ labels.csv and label_map.pbtxt): the tutorial CSV layout ``prepare`` reads."""
    from livedroid.labels import format_label_map

    shutil.rmtree(folder, ignore_errors=True)
    (folder / "images").mkdir(parents=True)
    rows = []
    for image in images:
        (folder / "images" / name_of(image)).write_bytes(image.encoded)
        rows += [[name_of(image), image.width, image.height, b.label, b.xmin, b.ymin, b.xmax, b.ymax] for b in image.boxes]
    if with_labels:
        with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax"])
            writer.writerows(rows)
        (folder / "label_map.pbtxt").write_text(format_label_map(label_map), encoding="utf-8")
    return folder / "labels.csv"


def name_of(image) -> str:
    return Path(image.filename).stem + ".jpg"


# The simulation ---------------------------------------------------------------------------------


def livedroid(*argv: object, log: Path) -> None:
    command = [LIVEDROID, *map(str, argv)]
    print("$ " + " ".join(command[1:]).replace(str(ROOT) + "/", ""), flush=True)
    with open(log, "a", encoding="utf-8") as stream:
        stream.write("$ " + " ".join(command) + "\n")
        stream.flush()
        done = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}; see {log}")


def train_and_eval(arm: str, csv_path: Path, test_csv: Path, work: Path, steps: int, seed: int, export: bool = False) -> dict:
    """Train one arm and measure it on the test set; an arm measured before (same steps) is read back."""
    log = work / "commands.log"
    done = work / arm / "result.json"
    if done.is_file() and json.loads(done.read_text())["steps"] == steps:
        return json.loads(done.read_text())
    began = time.monotonic()
    livedroid("train", "prepare", csv_path, "--out", work / arm / "dataset", "--val-fraction", 0, "--seed", seed, log=log)
    livedroid("train", "fit", "--data", work / arm / "dataset", "--out", work / arm / "training", "--steps", steps, log=log)
    if export:
        livedroid("train", "export", "--run", work / arm / "training", "--out", work / arm / "model", log=log)
    livedroid("train", "eval", "--run", work / arm / "training", "--data", test_csv, "--out", work / arm / "eval", log=log)
    metrics = json.loads((work / arm / "eval" / "metrics.json").read_text(encoding="utf-8"))
    result = {"mAP@0.5": metrics["mAP@0.5"], "mAP": metrics["mAP"], "per_class_AP": metrics["per_class_AP"],
              "mistakes": metrics["mistakes"], "minutes": round((time.monotonic() - began) / 60, 1), "steps": steps}
    done.write_text(json.dumps(result), encoding="utf-8")
    return result


def simulate(name: str, seed: int, steps: int, budget: float, work: Path, arms: list[str]) -> dict:
    print(f"\n== {name}, seed {seed}: {work} ==", flush=True)
    work.mkdir(parents=True, exist_ok=True)
    pool, test, label_map = load(name, seed)
    rng = random.Random(seed)
    order = sorted(pool, key=lambda image: image.sha256)
    rng.shuffle(order)
    seed_count = round(len(order) * SEED_SHARE)
    seed_set, rest = order[:seed_count], order[seed_count:]
    budget_count = round(len(pool) * budget)
    truth = {name_of(image): image for image in rest}
    test_csv = write_set(work / "test", test, label_map)
    result = {"dataset": name, "seed": seed, "steps": steps, "pool": len(pool), "test": len(test),
              "seed_images": len(seed_set), "asked": budget_count}

    result["seed_model"] = train_and_eval("seed", write_set(work / "seed-set", seed_set, label_map), test_csv, work, steps, seed, export=True)
    model = work / "seed" / "model" / "model_int8.tflite"
    write_set(work / "rest", rest, label_map, with_labels=False)  # the labels stay hidden from mine

    log = work / "commands.log"
    picked = {}
    if "mined" in arms:
        mined = mine(model, work / "rest" / "images", work / "picks", budget_count, log)
        picked["mined"] = [truth[record["image"]] for record in mined]
        result["picked"] = len(picked["mined"])
        result["review_cost"] = review_cost(mined, truth)
    if "mined_known" in arms:  # the same, told which photos are labelled already: novel against the seed set too
        mined_known = mine(model, work / "rest" / "images", work / "picks-known", budget_count, log, "--known", work / "seed-set" / "images")
        picked["mined_known"] = [truth[record["image"]] for record in mined_known]
        result["picked_known"] = len(picked["mined_known"])
        result["review_cost_known"] = review_cost(mined_known, truth)
    if "random" in arms:
        # K = what mine picked (near-duplicates can leave it short of the budget)
        picked["random"] = rng.sample(rest, min(len(p) for p in picked.values()) if picked else budget_count)
        result["review_cost_random"] = review_cost(pre_annotations(model, picked["random"], work, log), truth)
    result["signal_yield"] = signal_yield(model, work, truth, log)

    for arm in arms:
        folder = work / f"{arm.replace('_', '-')}-set"
        result[arm] = train_and_eval(arm, write_set(folder, seed_set + picked[arm], label_map), test_csv, work, steps, seed)
    print(json.dumps({k: result[k] for k in ("dataset", "seed")} | {arm: result[arm]["mAP@0.5"] for arm in ("seed_model", *arms)}), flush=True)
    return result


def mine(model: Path, images: Path, out: Path, count: int, log: Path, *extra: object) -> list[dict]:
    shutil.rmtree(out, ignore_errors=True)
    livedroid("mine", images, "-m", model, "--out", out, "--count", count, "--no-progress", *extra, log=log)
    return [json.loads(line) for line in (out / "mined.jsonl").read_text(encoding="utf-8").splitlines()]


def pre_annotations(model: Path, images: list, work: Path, log: Path) -> list[dict]:
    """The seed model's boxes on ``images``, as ``mine --all`` writes them (label assist)."""
    folder = work / "assist"
    write_set(folder, images, {}, with_labels=False)
    shutil.rmtree(work / "assisted", ignore_errors=True)
    livedroid("mine", folder / "images", "-m", model, "--out", work / "assisted", "--all", "--no-progress", log=log)
    return [json.loads(line) for line in (work / "assisted" / "mined.jsonl").read_text(encoding="utf-8").splitlines()]


def review_cost(records: list[dict], truth: dict) -> dict:
    """What a reviewer does to each pre-annotated box, the truth standing in for the reviewer:
    keep it (same class, IoU >= 0.85), move it (same class, less overlap), relabel it (other
    class on the object), delete it (on no object); and the boxes they add (objects missed)."""
    counts = {"boxes": 0, "kept": 0, "moved": 0, "relabelled": 0, "deleted": 0, "added": 0, "true_boxes": 0}
    for record in records:
        true_boxes = truth[record["image"]].boxes
        guessed = record["boxes"]
        counts["boxes"] += len(guessed)
        counts["true_boxes"] += len(true_boxes)
        pairs = sorted(
            ((iou(g["box"], (t.xmin, t.ymin, t.xmax, t.ymax)), gi, ti) for gi, g in enumerate(guessed) for ti, t in enumerate(true_boxes)),
            reverse=True,
        )
        used_g, used_t = set(), set()
        for overlap, gi, ti in pairs:
            if overlap < SAME_OBJECT_IOU or gi in used_g or ti in used_t:
                continue
            used_g.add(gi)
            used_t.add(ti)
            if guessed[gi]["label"] != true_boxes[ti].label:
                counts["relabelled"] += 1
            else:
                counts["kept" if overlap >= KEPT_IOU else "moved"] += 1
        counts["deleted"] += len(guessed) - len(used_g)
        counts["added"] += len(true_boxes) - len(used_t)
    counts["kept_share"] = round(counts["kept"] / counts["boxes"], 3) if counts["boxes"] else None
    return counts


def signal_yield(model: Path, work: Path, truth: dict, log: Path) -> dict:
    """For each signal: of the images it fires on, the share whose pre-annotations are wrong (a
    box not kept, or an object missed), against that share over all images."""
    records = pre_annotations(model, list(truth.values()), work, log)
    wrong = {r["image"]: bool(sum(v for k, v in review_cost([r], truth).items() if k in ("moved", "relabelled", "deleted", "added")))
             for r in records}
    base = float(np.mean(list(wrong.values())))
    fired: dict[str, list[bool]] = {}
    for record in records:
        for signal, value in record["signals"].items():
            if signal != "novelty" and value > 0:
                fired.setdefault(signal, []).append(wrong[record["image"]])
    return {"images": len(records), "wrong_share": round(base, 3),
            "signals": {s: {"fired": len(w), "wrong_share": round(float(np.mean(w)), 3)} for s, w in fired.items()}}


def iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def paired_table(results: list[dict], arm: str = "mined_known") -> list[str]:
    """``arm`` against the random arm, seed by seed (the same seed model, pool and test set): each
    side's mean and standard deviation over seeds, the paired differences, and an exact sign-flip
    test of them (every +/- assignment of the differences; with 5 seeds the smallest p is 1/16)."""
    rows = ["| dataset | seeds | metric | random: mean ± sd | mined, --known: mean ± sd | paired difference: mean ± sd | seeds mined ahead | p (two-sided, sign-flip) |",
            "|---|---|---|---|---|---|---|---|"]
    groups = {name: [r for r in results if r["dataset"] == name] for name in sorted({r["dataset"] for r in results})}
    groups["both"] = results
    for name, runs in groups.items():
        paired = [r for r in runs if arm in r and "random" in r]
        for metric in ("mAP@0.5", "mAP"):
            random_arm = np.array([r["random"][metric] for r in paired])
            mined = np.array([r[arm][metric] for r in paired])
            difference = mined - random_arm
            rows.append(f"| {name} | {len(paired)} | {metric} | {random_arm.mean():.3f} ± {random_arm.std(ddof=1):.3f} | "
                        f"{mined.mean():.3f} ± {mined.std(ddof=1):.3f} | {difference.mean():+.3f} ± "
                        f"{difference.std(ddof=1):.3f} | {int((difference > 0).sum())} of {len(paired)} | "
                        f"{sign_flip_p(difference):.2f} |")
    return rows


def sign_flip_p(differences: np.ndarray) -> float:
    """Exact two-sided p of the mean paired difference under 'the arms are exchangeable'."""
    signs = np.array(np.meshgrid(*[[-1, 1]] * len(differences))).reshape(len(differences), -1).T
    means = np.abs((signs * differences).mean(axis=1))
    return float((means >= abs(differences.mean()) - 1e-12).mean())


def print_table(results: list[dict]) -> None:
    print("\n| dataset | seed | pool / test | seed images + K | steps | seed model mAP@0.5 / mAP | random arm | mined arm | mined, --known seed set |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        cell = lambda arm: f"{r[arm]['mAP@0.5']:.3f} / {r[arm]['mAP']:.3f}" if arm in r else "—"  # noqa: E731
        print(f"| {r['dataset']} | {r['seed']} | {r['pool']} / {r['test']} | {r['seed_images']} + {r.get('picked', r.get('picked_known'))} | "
              f"{r['steps']} | {cell('seed_model')} | {cell('random')} | {cell('mined')} | {cell('mined_known')} |")
    print("\n" + "\n".join(paired_table(results)))
    print("\n| dataset, seed | picks | boxes pre-annotated | kept as is | moved | relabelled | deleted | added |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        for arm, key in (("mined", "review_cost"), ("mined, --known", "review_cost_known"), ("random", "review_cost_random")):
            if key not in r:
                continue
            c = r[key]
            print(f"| {r['dataset']} {r['seed']} | {arm} | {c['boxes']} | {c['kept']} ({c['kept_share']}) | {c['moved']} | {c['relabelled']} | {c['deleted']} | {c['added']} |")
    print("\n| dataset | seed | images | wrong pre-annotations, all images | near threshold: fired, wrong | mirror disagrees: fired, wrong |")
    print("|---|---|---|---|---|---|")
    for r in results:
        y = r["signal_yield"]
        cell = lambda name: (f"{y['signals'][name]['fired']}, {y['signals'][name]['wrong_share']:.2f}" if name in y["signals"] else "0")  # noqa: E731
        print(f"| {r['dataset']} | {r['seed']} | {y['images']} | {y['wrong_share']:.2f} | {cell('near_threshold')} | {cell('mirror_disagrees')} |")


if __name__ == "__main__":
    sys.exit(main())
