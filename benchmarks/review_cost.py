"""Does ``livedroid mine`` spend a reviewer's time well? Two measurements, no training.

**(a) Same-scene pairs among the picks** on every shared clip (``../shared/videos``):
``livedroid mine CLIP --out DIR`` with the default model and options, then the same command again
(a rerun into the same folder); and ``--count 3`` into another folder, then resumed with the
defaults (a rerun with picks left to make). Two picks are judged the same scene by an independent picture
metric, not by mine's own test: SSIM of grey 96x54 thumbnails, and the correlation of hue-saturation
histograms. Each threshold is calibrated on pairs that are obviously the same scene (two frames of a
clip 0.2 s apart, sampled each second: the threshold is their 5th percentile) and reported beside
pairs that obviously are not (frames of two different clips). A metric flags candidates; the
contact sheets are looked at to judge them (the docs say what was seen). Also counted: rerun picks
within ``--min-gap`` (1 s) of a pick of the first run (should be none). The eye's verdict is
written into the result file by hand (``looked_at``, ``seen``) and kept while the picks stay the same.

**(b) The review cost**: the share of picks whose pre-annotations a reviewer must change, for the
K frames ``mine`` picks against K random frames of the same pool, on photo sets with ground truth
(the truth plays the reviewer). A pick must change when, at the threshold mine pre-annotates at,
any object is missed, any box is on no object or a second box on one, or any object is named
wrong (IoU 0.5; livedroid's own eval matching, ``training/mistakes.py``). Pre-annotator and data fit,
no model is trained:

- person-drone: the default COCO model, ``--classes person``, all 85 frames (COCO has people);
- raccoon: the default COCO model has no raccoon class; it calls raccoons cat, bear or dog, so it
  mines with ``--classes cat,dog,bear`` and those names count as "raccoon" (renaming the class
  is not counted as a change; placing, adding and deleting boxes are). All 200 photos.

Not star-wars: ``models/star-wars`` was trained on all its photos but the 32 of a validation split
that today's ``train prepare`` no longer reproduces (its model card's validation photos, R2-D2_4,
R2-D2_71 and others, fall on the training side now), so no photo is known to be new to it.

The random arm is the mean and spread of ``--draws`` random samples of the same size from the same
pool, on the same pre-annotations (``mine --all``). Everything runs through ``livedroid`` as typed.

    .venv/bin/python benchmarks/review_cost.py                 # ~10 min on 2 idle cores, 30 on busy ones
    .venv/bin/python benchmarks/review_cost.py --clips ""      # the photo sets only: the clips stay as --out has them
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
LIVEDROID = str(Path(sys.executable).with_name("livedroid"))
MIN_GAP_S = 1.0  # mine's default --min-gap
THUMBNAIL = (96, 54)
SAME_SCENE_GAP_S = 0.2  # two frames this close are obviously the same scene
SAME_SCENE_PERCENTILE = 5  # the threshold judges 95 % of those pairs the same
PHOTO_SETS = {
    "raccoon": {"model": None, "classes": "cat,dog,bear", "as_truth": {"cat": "raccoon", "dog": "raccoon", "bear": "raccoon"}},
    "person-drone": {"model": None, "classes": "person", "as_truth": {}},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", default=",".join(sorted(p.name for p in clip_paths())), help="clip file names in ../shared/videos")
    parser.add_argument("--datasets", default=",".join(PHOTO_SETS), help=f"photo sets (default {','.join(PHOTO_SETS)})")
    parser.add_argument("--budget", type=float, default=0.2, help="K as a share of the pool (default 0.2)")
    parser.add_argument("--draws", type=int, default=1000, help="random draws of K per photo set (default 1000)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/livedroid-review-cost"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "review_cost.json")
    args = parser.parse_args()
    if unknown := {name for name in args.datasets.split(",") if name} - set(PHOTO_SETS):
        parser.error(f"unknown photo set {', '.join(sorted(unknown))} (known: {', '.join(PHOTO_SETS)})")
    args.work.mkdir(parents=True, exist_ok=True)
    clips = [SHARED / "videos" / name for name in args.clips.split(",") if name]
    calibration = calibrate(clip_paths())
    # Clips and photo sets not named this time stay as --out has them: a run can redo one part.
    earlier = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {"clips": [], "photo_sets": []}
    clips = [keep_looked_at(same_scene_pairs(clip, args.work / "clips" / clip.stem, calibration), args.out) for clip in clips]
    photo_sets = [review_cost(name, args.budget, args.draws, args.work / name) for name in args.datasets.split(",") if name]
    clips_now = {c["clip"]: c for c in earlier["clips"]} | {c["clip"]: c for c in clips}
    photo_sets_now = {s["dataset"]: s for s in earlier["photo_sets"]} | {s["dataset"]: s for s in photo_sets}
    results = {
        "calibration": calibration,
        "clips": [clips_now[name] for name in sorted(clips_now)],
        "photo_sets": [photo_sets_now[name] for name in PHOTO_SETS if name in photo_sets_now],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("\n".join(markdown_tables(results)))
    return 0


def clip_paths() -> list[Path]:
    return sorted([*(SHARED / "videos").glob("*.mp4"), *(SHARED / "videos").glob("*.avi")])


def livedroid(*argv: object, log: Path, nothing_new_ok: bool = False) -> None:
    """Run one command as typed (paths under the repository's parent relative, as the docs write
    them). A rerun that finds nothing new is one line and exit 2, accepted when ``nothing_new_ok``."""
    command = [LIVEDROID, *(os.path.relpath(a, ROOT) if isinstance(a, Path) and a.is_relative_to(ROOT.parent) else str(a) for a in argv)]
    print("$ livedroid " + " ".join(command[1:]), flush=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    with open(log, "a", encoding="utf-8") as stream:
        stream.write("$ livedroid " + " ".join(command[1:]) + "\n" + done.stdout + done.stderr)
    if done.returncode and not (nothing_new_ok and done.returncode == 2 and "nothing new to pick" in done.stderr):
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}; see {log}")


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "mined.jsonl").read_text(encoding="utf-8").splitlines()]


# (a) Same-scene pairs ---------------------------------------------------------------------------


def thumbnail(picture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(grey thumbnail for SSIM, normalised hue-saturation histogram) of a BGR picture."""
    import cv2

    grey = cv2.resize(cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY), THUMBNAIL, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(picture, cv2.COLOR_BGR2HSV)
    histogram = cv2.calcHist([hsv], [0, 1], None, [50, 60], [0, 180, 0, 256])
    return grey.astype(np.float64), cv2.normalize(histogram, histogram).flatten()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity (Wang et al. 2004: Gaussian window 1.5, K1 0.01, K2 0.03)."""
    import cv2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (7, 7), 1.5)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(index.mean())


def likeness(a: tuple, b: tuple) -> dict[str, float]:
    import cv2

    return {"ssim": round(ssim(a[0], b[0]), 4), "histogram": round(float(cv2.compareHist(a[1], b[1], cv2.HISTCMP_CORREL)), 4)}


def sampled_frames(clip: Path) -> list[tuple[tuple, tuple]]:
    """(frame, the frame 0.2 s later) as thumbnails, once a second through the clip."""
    import cv2

    capture = cv2.VideoCapture(str(clip))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    step, gap = max(1, round(fps)), max(1, round(fps * SAME_SCENE_GAP_S))
    frames, pairs = {}, []
    index = 0
    while True:
        ok, picture = capture.read()
        if not ok:
            break
        if index % step in (0, gap):
            frames[index] = thumbnail(picture)
        index += 1
    capture.release()
    for start in range(0, index, step):
        if start in frames and start + gap in frames:
            pairs.append((frames[start], frames[start + gap]))
    return pairs


def calibrate(clips: list[Path]) -> dict:
    """Thresholds from pairs obviously the same scene (0.2 s apart), shown beside pairs obviously
    not (the first sampled frames of two different clips)."""
    per_clip = {clip.name: sampled_frames(clip) for clip in clips}
    same = [likeness(a, b) for pairs in per_clip.values() for a, b in pairs]
    different = [likeness(pa[0], pb[0]) for (_, a), (_, b) in itertools.combinations(per_clip.items(), 2) for pa in a[:10] for pb in b[:10]]
    result = {"same_pairs": len(same), "different_pairs": len(different)}
    for metric in ("ssim", "histogram"):
        ours = np.array([s[metric] for s in same])
        theirs = np.array([d[metric] for d in different])
        result[metric] = {
            "threshold": round(float(np.percentile(ours, SAME_SCENE_PERCENTILE)), 3),
            "same_scene_0.2s": {"min": round(float(ours.min()), 3), "median": round(float(np.median(ours)), 3)},
            "other_clip": {"median": round(float(np.median(theirs)), 3), "max": round(float(theirs.max()), 3)},
        }
    return result


def same_scene_pairs(clip: Path, out: Path, calibration: dict) -> dict:
    """Mine the clip as typed, rerun into the same folder; and mine 3 frames, then rerun with the
    defaults (a run cut short, then resumed: the rerun has room to pick). Count picks the metrics
    judge the same scene and rerun picks within --min-gap of an earlier pick."""
    default = mine_twice(clip, out, [], calibration)
    resumed = mine_twice(clip, out.with_name(out.name + "-resumed"), ["--count", 3], calibration)
    return {"clip": clip.name, **default, "resumed": resumed}


def mine_twice(clip: Path, out: Path, first_options: list, calibration: dict) -> dict:
    import cv2

    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.parent / "commands.log"
    livedroid("mine", clip, "--out", out, *first_options, "--no-progress", log=log)
    first = records(out)
    livedroid("mine", clip, "--out", out, "--no-progress", log=log, nothing_new_ok=True)
    every = records(out)
    rerun = every[len(first):]
    within_gap = [[r["frame"], f["frame"]] for r in rerun for f in first if abs(r["timestamp"] - f["timestamp"]) < MIN_GAP_S]
    pictures = {r["image"]: thumbnail(cv2.imread(str(out / "images" / r["image"]))) for r in every}
    flagged = {"ssim": [], "histogram": [], "both": []}
    for a, b in itertools.combinations(every, 2):
        alike = likeness(pictures[a["image"]], pictures[b["image"]])
        over = {metric: alike[metric] >= calibration[metric]["threshold"] for metric in alike}
        for metric in flagged:
            if all(over.values()) if metric == "both" else over[metric]:
                flagged[metric].append({"frames": [a["frame"], b["frame"]], **alike})
    return {
        "picks_first_run": len(first),
        "picks_rerun": len(rerun),
        "frames": [r["frame"] for r in every],
        "rerun_within_min_gap": within_gap,
        "same_scene_ssim": flagged["ssim"],
        "same_scene_histogram": flagged["histogram"],
        "same_scene_both": flagged["both"],
    }


def keep_looked_at(clip: dict, out: Path) -> dict:
    """The verdict of a person who looked at the contact sheet (``looked_at``: same-scene pairs,
    ``seen``: what they saw), written into the result file by hand, stays while the picks are
    the same frames; new picks need a new look."""
    earlier = json.loads(out.read_text(encoding="utf-8"))["clips"] if out.is_file() else []
    for old in (o for o in earlier if o["clip"] == clip["clip"]):
        for new, looked in ((clip, old), (clip["resumed"], old["resumed"])):
            if looked["frames"] == new["frames"]:
                new |= {key: looked[key] for key in ("looked_at", "seen") if key in looked}
    return clip


# (b) The review cost ----------------------------------------------------------------------------


def photo_set(name: str) -> list:
    """The pool with its truth: validated images with canonical class names."""
    from livedroid.training.dataset.prepare import read_annotations
    from livedroid.training.dataset.validate import validate_images

    problems: list = []
    folder = SHARED / "datasets" / name
    if name == "raccoon":
        annotated = [image for split in ("train", "test") for image in
                     read_annotations(folder / "data" / f"{split}_labels.csv", folder / "images", problems)]
    elif name == "person-drone":
        annotated = read_annotations(folder / "_annotations.coco.json", folder, problems)
    else:
        raise ValueError(f"unknown photo set {name}")
    return validate_images(annotated, problems)


def must_change(record: dict, truth: list, as_truth: dict[str, str], threshold: float):
    """livedroid eval's matching of one pick's pre-annotations to its truth."""
    from livedroid.detections import Detections
    from livedroid.training.mistakes import image_mistakes

    boxes = record["boxes"]
    found = Detections(
        xyxy=np.array([b["box"] for b in boxes], np.float32).reshape(-1, 4),
        scores=np.array([b["score"] for b in boxes], np.float32),
        class_ids=np.zeros(len(boxes), np.int32),
        labels=[as_truth.get(b["label"], b["label"]) for b in boxes],
    )
    return image_mistakes(truth, found, threshold)


def review_cost(name: str, budget: float, draws: int, work: Path) -> dict:
    setup = PHOTO_SETS[name]
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    images = photo_set(name)
    pool = work / "pool"
    pool.mkdir()
    truth = {}
    for image in images:  # bare images: mine never sees the truth
        file_name = Path(image.filename).stem + ".jpg"
        (pool / file_name).write_bytes(image.encoded)
        truth[file_name] = image.boxes
    log = work / "commands.log"
    options = [*(["-m", setup["model"]] if setup["model"] else []), *(["--classes", setup["classes"]] if setup["classes"] else [])]
    asked = round(len(images) * budget)
    livedroid("mine", pool, "--out", work / "mined", "--count", asked, "--no-progress", *options, log=log)
    livedroid("mine", pool, "--out", work / "all", "--all", "--no-progress", *options, log=log)
    picked = [r["image"] for r in records(work / "mined")]
    every = {r["image"]: r for r in records(work / "all")}
    outcome = {image: must_change(record, truth[image], setup["as_truth"], record["threshold"]) for image, record in every.items()}
    wrong = {image: not result.clean for image, result in outcome.items()}
    mined_share = float(np.mean([wrong[image] for image in picked]))
    rng = random.Random(0)
    random_shares = np.array([np.mean([wrong[image] for image in rng.sample(sorted(every), len(picked))]) for _ in range(draws)])

    def mistakes(names: list[str]) -> dict[str, int]:
        found = [outcome[n] for n in names]
        return {"missed": sum(named == "(missed)" for o in found for _, named in o.named_as),
                "wrong_class": sum(named not in (true, "(missed)") for o in found for true, named in o.named_as),
                "false_or_duplicate_boxes": sum(len(o.false_alarms) + o.duplicates for o in found)}

    return {
        "dataset": name,
        "model": setup["model"] or "coco-ssd-mobilenet-v2 (default)",
        "classes": setup["classes"],
        "counted_as_truth": setup["as_truth"],
        "pool": len(every),
        "asked": asked,
        "picked": len(picked),
        "pool_share_wrong": round(float(np.mean(list(wrong.values()))), 3),
        "mined_share_wrong": round(mined_share, 3),
        "mined_wrong": sum(wrong[image] for image in picked),
        "mined_mistakes": mistakes(picked),
        "random_draws": draws,
        "random_share_wrong_mean": round(float(random_shares.mean()), 3),
        "random_share_wrong_sd": round(float(random_shares.std(ddof=1)), 3),
        "random_at_or_above_mined": round(float(np.mean(random_shares >= mined_share)), 3),
        "ratio": round(mined_share / random_shares.mean(), 2) if random_shares.mean() else None,
        "picks": {image: outcome[image].summary() for image in picked},
    }


# The tables the docs quote ----------------------------------------------------------------------


def markdown_tables(results: dict) -> list[str]:
    """The rows docs/data-loop.md quotes (tests/test_docs.py checks them against the result file)."""
    def flagged(run: dict) -> str:
        return " / ".join(str(len(run[f"same_scene_{metric}"])) for metric in ("ssim", "histogram", "both"))

    rows = ["| clip | picks | rerun adds | pairs flagged: SSIM / histogram / both | same-scene pairs, looked at "
            "| `--count 3`, rerun: picks | its rerun picks within --min-gap | its pairs flagged | looked at |",
            "|---|---|---|---|---|---|---|---|---|"]
    for clip in results["clips"]:
        resumed = clip["resumed"]
        rows.append(f"| {clip['clip']} | {clip['picks_first_run']} | {clip['picks_rerun']} | {flagged(clip)} | "
                    f"{clip.get('looked_at', '—')} | {resumed['picks_first_run']} + {resumed['picks_rerun']} | "
                    f"{len(resumed['rerun_within_min_gap'])} | {flagged(resumed)} | {resumed.get('looked_at', '—')} |")
    rows += ["", "| photo set | pre-annotator | pool | K picked | must change: mined | random (mean ± sd) | ratio | random draws ≥ mined |",
             "|---|---|---|---|---|---|---|---|"]
    for s in results["photo_sets"]:
        classes = f", --classes {s['classes']}" if s["classes"] else ""
        rows.append(f"| {s['dataset']} | {s['model']}{classes} | {s['pool']} | {s['picked']} | "
                    f"{s['mined_wrong']}/{s['picked']} = {s['mined_share_wrong']:.2f} | "
                    f"{s['random_share_wrong_mean']:.2f} ± {s['random_share_wrong_sd']:.2f} | {s['ratio']}× | "
                    f"{s['random_at_or_above_mined']:.1%} |")
    return rows


if __name__ == "__main__":
    sys.exit(main())
