"""Make the documentation's pictures (docs/images/) from real runs on ../shared material.

    .venv/bin/python scripts/make_pictures.py [--shared ../shared] [--out docs/images]

- quick-start-frame.jpg: the frame with the most people of ``livedroid run`` on the quick-start clip;
- mining-contact-sheet.jpg: the contact sheet ``livedroid mine`` writes for that clip;
- review-page.jpg: ``livedroid review`` on that mined folder, in the Chromium the tests drive;
- serve-page.jpg: ``livedroid serve`` playing the clip as a camera, in the same Chromium;
- eval-contact-sheet.jpg, loss-curve.png: what ``livedroid train`` wrote for the shipped
  star-wars model (models/star-wars/eval/), shrunk.

Every picture is kept under 300 kB (JPEG quality lowered, then the size, until it fits), so that
the repository stays small. Needs the dev extra (playwright) and Debian's chromium.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIP = "videos/intel_one-by-one-person-detection.mp4"
MAX_BYTES = 300_000
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
# one camera playing the clip, a zone around the table: the page shows its count and events
SERVE_CONFIG = """\
cameras:
  - name: lobby
    source: {clip}
    loop: true
    classes: [person]
    zones: {{table: {{points: [[0.35, 0.5], [0.85, 0.5], [0.85, 1.0], [0.35, 1.0]], classes: [person]}}}}
"""


def livedroid(*argv: str, cwd: Path) -> None:
    """One ``livedroid`` command as a user types it; its failure stops the script."""
    command = [sys.executable, "-m", "livedroid", *argv]
    print("$", "livedroid", *argv, flush=True)
    subprocess.run(command, cwd=cwd, check=True)


def save_small(image: np.ndarray, path: Path, max_width: int = 1280) -> None:
    """Write ``image`` (BGR) as JPEG or PNG under MAX_BYTES: lower quality first, then the size."""
    scale = min(1.0, max_width / image.shape[1])
    while True:
        sized = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
        for quality in (85, 75, 65):
            params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 9]
            ok, encoded = cv2.imencode(path.suffix, sized, params)
            if ok and len(encoded) <= MAX_BYTES:
                path.write_bytes(encoded.tobytes())
                print(f"wrote {path.relative_to(REPO)} ({sized.shape[1]}x{sized.shape[0]}, {len(encoded) // 1000} kB)")
                return
        scale *= 0.8


def quick_start_frame(clip: Path, work: Path, out: Path) -> None:
    """The quick start's command, with --jsonl to find the frame with the most boxes."""
    livedroid("run", str(clip), "-o", "annotated.mp4", "--jsonl", "annotated.jsonl", "--max-frames", "900", cwd=work)
    records = [json.loads(line) for line in (work / "annotated.jsonl").read_text().splitlines()]
    best = max(range(len(records)), key=lambda i: _people_first(records[i]["detections"]))
    capture = cv2.VideoCapture(str(work / "annotated.mp4"))
    capture.set(cv2.CAP_PROP_POS_FRAMES, best)
    ok, frame = capture.read()
    capture.release()
    if not ok:
        raise SystemExit(f"could not read frame {best} of {work / 'annotated.mp4'}")
    save_small(frame, out / "quick-start-frame.jpg")


def _people_first(detections: list[dict]) -> tuple[int, int, float]:
    """Rank a frame: most people, then fewest other boxes, then the surest people."""
    people = [d["score"] for d in detections if d["label"] == "person"]
    return len(people), -(len(detections) - len(people)), sum(people)


def mining_contact_sheet(clip: Path, work: Path, out: Path) -> Path:
    livedroid("mine", str(clip), "--classes", "person", "--out", "mined", "--count", "12", "--no-progress", cwd=work)
    save_small(cv2.imread(str(work / "mined" / "contact_sheet.jpg")), out / "mining-contact-sheet.jpg")
    return work / "mined"


def serving(argv: list[str], cwd: Path, url_pattern: str) -> tuple[subprocess.Popen, str]:
    """Start a ``livedroid`` server and wait for the line that names its URL; its output keeps
    being drained (and echoed) by a thread, so that a full pipe never blocks it."""
    process = subprocess.Popen([sys.executable, "-m", "livedroid", *argv], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    found: list[str] = []
    announced = threading.Event()

    def drain() -> None:
        for line in process.stdout:
            print(line, end="", file=sys.stderr)
            match = re.search(url_pattern, line)
            if match and not found:
                found.append(match.group(0))
                announced.set()
        announced.set()

    threading.Thread(target=drain, daemon=True).start()
    announced.wait(120)
    if not found:
        process.terminate()
        raise SystemExit(f"livedroid {' '.join(argv)} never said where it listens")
    return process, found[0]


def screenshot(url: str, path: Path, wait_s: float, selector: str | None = None) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url, wait_until="domcontentloaded")
            if selector:
                page.wait_for_selector(selector, timeout=30_000)
            time.sleep(wait_s)
            png = page.screenshot(type="png")
        finally:
            browser.close()
    save_small(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), path)


def review_page(mined: Path, out: Path) -> None:
    process, url = serving(["review", str(mined), "--port", "0"], mined.parent, r"http://127\.0\.0\.1:\d+/")
    try:
        screenshot(url, out / "review-page.jpg", wait_s=2)
    finally:
        process.terminate()
        process.wait(timeout=30)


def serve_page(clip: Path, work: Path, out: Path) -> None:
    (work / "cameras.yaml").write_text(SERVE_CONFIG.format(clip=clip))
    process, url = serving(["serve", "--config", "cameras.yaml", "--http", "127.0.0.1:0"], work, r"http://127\.0\.0\.1:\d+/")
    try:
        stats = url.rstrip("/") + "/api/stats"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with urllib.request.urlopen(stats, timeout=5) as response:
                camera = json.load(response)["cameras"]["lobby"]
            if camera["events"] and camera["objects"]:
                break
            time.sleep(0.5)
        screenshot(url, out / "serve-page.jpg", wait_s=1.5)
    finally:
        process.terminate()
        process.wait(timeout=30)


def star_wars_eval(out: Path) -> None:
    """The pictures ``livedroid train`` wrote when it made the shipped star-wars model."""
    evaluated = REPO / "models" / "star-wars" / "eval"
    save_small(cv2.imread(str(evaluated / "contact_sheet.png")), out / "eval-contact-sheet.jpg")
    save_small(cv2.imread(str(evaluated / "loss_curve.png")), out / "loss-curve.png", max_width=900)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the test material (default ../shared)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images", help="where the pictures go")
    parser.add_argument("--only", nargs="+", choices=("run", "mine", "serve", "eval"), help="make only these")
    args = parser.parse_args()
    clip = (args.shared / CLIP).resolve()
    if not clip.is_file():
        raise SystemExit(f"needs {clip} (the quick start's clip)")
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only or ("run", "mine", "serve", "eval"))
    with tempfile.TemporaryDirectory(prefix="livedroid-pictures-") as temporary:
        work = Path(temporary)
        if "run" in wanted:
            quick_start_frame(clip, work, args.out)
        if "mine" in wanted:
            review_page(mining_contact_sheet(clip, work, args.out), args.out)
        if "serve" in wanted:
            serve_page(clip, work, args.out)
    if "eval" in wanted:
        star_wars_eval(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
