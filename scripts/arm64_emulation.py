#!/usr/bin/env python3
"""Run livedroid's runtime on 64-bit ARM (Debian bookworm arm64, as Raspberry Pi OS) under qemu.

What it does, each step skipped when its result is already there (the script is idempotent):

1. checks the prerequisites: root, ``debootstrap`` and ``qemu-user-static`` (Debian packages),
   binfmt_misc mounted with ``qemu-aarch64`` enabled, the Debian mirror and PyPI reachable;
2. builds a Debian bookworm arm64 root with ``debootstrap --foreign`` + second stage, in a cache
   folder outside the repository (``$LIVEDROID_ARM64_ROOT``, default /var/tmp/livedroid-arm64-root);
3. copies the working tree's package (pyproject.toml, README.md, livedroid/, the default model) to
   /opt/livedroid-src in the root and installs it the way a Pi user would: ``python3 -m venv``, then a
   plain ``pip install`` of the base package (no extras, no TensorFlow);
4. cuts a short clip (8 frames of a real clip by default) with PyAV on the host;
5. runs ``livedroid run CLIP --jsonl ... -o ... --threads 2`` inside the root (aarch64, emulated as
   the Pi 5's Cortex-A76, see DEFAULT_CPU) and the same on the host (x86-64), with the default int8 model;
6. compares: same frame count, both output videos decode to that many frames, detections matched by
   class with IoU > 0.85 and score within 0.07 (the two yuv->rgb conversions differ by a few levels).

Run it as root with a Python that has livedroid's runtime (the repository's .venv):

    sudo .venv/bin/python scripts/arm64_emulation.py            # build/reuse, install, run, compare
    sudo .venv/bin/python scripts/arm64_emulation.py --check     # only say whether it can run here

Exit status: 0 the runs agree, 1 they differ, 3 it cannot run here (the reason is printed).
Timings go to stdout and to WORK/result.json (WORK = ROOT/srv/livedroid-check).
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from fractions import Fraction
from pathlib import Path

from livedroid.detections import best_same_class

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = Path(os.environ.get("LIVEDROID_ARM64_ROOT", "/var/tmp/livedroid-arm64-root"))
DEFAULT_CLIP = REPO.parent / "shared" / "videos" / "intel_one-by-one-person-detection.mp4"
SUITE = "bookworm"
# Debian packages of the root: Python 3.11 with venv and pip as on Raspberry Pi OS bookworm, the CA
# bundle for pip, and the two libraries opencv-python's (non-headless) wheel links against.
ROOT_PACKAGES = ["python3", "python3-venv", "python3-pip", "ca-certificates", "libgl1", "libglib2.0-0"]
# Paths inside the root.
SRC = "/opt/livedroid-src"
VENV = "/opt/livedroid-venv"
WORK = "/srv/livedroid-check"
READY = ".livedroid-root-ready"  # written once the second stage has finished
QEMU = Path("/usr/bin/qemu-aarch64-static")
# The CPU qemu emulates (QEMU_CPU). qemu's default, "max", offers every feature it knows, SVE
# included, and under qemu 7.2 (Debian 12) ai-edge-litert's XNNPACK path then returns garbage for the
# int8 model (no detections); with "max,sve=off", or without XNNPACK, the outputs are right. A Pi has
# no SVE: cortex-a76 is the Pi 5's core, cortex-a72 the Pi 4's.
DEFAULT_CPU = "cortex-a76"
BINFMT = Path("/proc/sys/fs/binfmt_misc")

# Match tolerances. The two sides decode the same yuv420p frames but convert them to RGB with up to
# ±3 levels of difference, so boxes and scores may move a little. The int8 model's scores come in
# coarse steps (0.50, 0.56, 0.62 ... 0.84, 0.87, 0.89): 0.07 allows one step near the threshold.
IOU_MIN = 0.85
SCORE_TOL = 0.07


class Unavailable(Exception):
    """This machine cannot run the emulated check; the message says why."""


def log(message: str) -> None:
    print(f"[arm64] {message}", flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command, echoing it; raise on failure."""
    log("$ " + " ".join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=True, **kwargs)


# --------------------------------------------------------------------------------------------------
# 1. Prerequisites
# --------------------------------------------------------------------------------------------------


def debian_mirror() -> str:
    """$LIVEDROID_DEBIAN_MIRROR, else the host's Debian mirror from its apt sources, else deb.debian.org."""
    if os.environ.get("LIVEDROID_DEBIAN_MIRROR"):
        return os.environ["LIVEDROID_DEBIAN_MIRROR"]
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]
    for path in sources:
        with contextlib.suppress(OSError):
            for uri in re.findall(r"(?:^URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+)", path.read_text(), re.M):
                if "debian" in uri and "security" not in uri:
                    return uri
    return "http://deb.debian.org/debian"


def enable_binfmt() -> None:
    """Make aarch64 binaries run transparently through qemu (binfmt_misc is often unmounted in containers)."""
    if not (BINFMT / "status").exists():
        try:
            run(["mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT], capture_output=True)
        except subprocess.CalledProcessError as error:
            raise Unavailable(f"cannot mount binfmt_misc ({error.stderr.decode().strip()}); "
                              "an unprivileged container cannot run foreign binaries") from None
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists() or "enabled" not in entry.read_text():
        if shutil.which("update-binfmts"):
            subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True)
    if not entry.exists() or "enabled" not in entry.read_text():
        raise Unavailable("binfmt_misc has no enabled qemu-aarch64 entry (install binfmt-support and "
                          "qemu-user-static, then: update-binfmts --enable qemu-aarch64)")


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=15):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def check_prerequisites(root: Path) -> None:
    """Raise Unavailable with the reason when the emulated run cannot happen on this machine."""
    if sys.platform != "linux":
        raise Unavailable("needs Linux")
    if os.geteuid() != 0:
        raise Unavailable("needs root (debootstrap, chroot and mounts)")
    missing = [tool for tool in ("debootstrap", "chroot", "mount") if not shutil.which(tool)]
    if not QEMU.exists():
        missing.append(str(QEMU))
    if missing:
        raise Unavailable(f"missing {', '.join(missing)}: apt-get install -y --no-install-recommends "
                          "debootstrap qemu-user-static binfmt-support")
    try:
        import av  # noqa: F401 - the host side needs livedroid's runtime
        import numpy  # noqa: F401
    except ImportError as error:
        raise Unavailable(f"run this script with a Python that has livedroid's runtime ({error})") from None
    enable_binfmt()
    if not (root / READY).exists() and not reachable(f"{debian_mirror().rstrip('/')}/dists/{SUITE}/Release"):
        raise Unavailable(f"the Debian mirror {debian_mirror()} is not reachable (no network?)")
    if not reachable("https://pypi.org/simple/ai-edge-litert/"):
        raise Unavailable("PyPI (https://pypi.org) is not reachable (no network?)")


# --------------------------------------------------------------------------------------------------
# 2. The root
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def mounted(root: Path):
    """/proc and /dev inside the root for the duration (mounted only if not already)."""
    mine = []
    try:
        for target, cmd in ((root / "proc", ["mount", "-t", "proc", "proc"]), (root / "dev", ["mount", "--bind", "/dev"])):
            target.mkdir(parents=True, exist_ok=True)
            if not os.path.ismount(target):
                run(cmd + [target])
                mine.append(target)
        yield
    finally:
        for target in reversed(mine):
            subprocess.run(["umount", "-l", str(target)], check=False)


def in_root(root: Path, script: str, *, capture: bool = False, check: bool = True,
            cpu: str = DEFAULT_CPU) -> subprocess.CompletedProcess:
    """A shell command inside the root, with a clean environment (no host pip settings such as x86
    wheel folders), emulating ``cpu``."""
    env = {
        "QEMU_CPU": cpu,
        "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_DEFAULT_TIMEOUT": "180",
        "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
    }
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        if name in os.environ:
            env[name] = os.environ[name]
    cmd = ["chroot", str(root), "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), "/bin/sh", "-c", script]
    log(f"(arm64) $ {script}")
    return subprocess.run(cmd, check=check, text=True, capture_output=capture, env={**os.environ, "QEMU_CPU": cpu})


def build_root(root: Path, timings: dict) -> None:
    """Debian bookworm arm64 in ``root``: first stage on the host, second stage through qemu."""
    if (root / READY).exists():
        log(f"reusing the root {root}")
        return
    if not (root / "debootstrap" / "debootstrap").exists():
        if root.exists():
            shutil.rmtree(root)  # a half-done first stage: start over
        root.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        run(["debootstrap", "--arch=arm64", "--foreign", "--variant=minbase",
             f"--include={','.join(ROOT_PACKAGES)}", SUITE, root, debian_mirror()])
        timings["debootstrap_first_stage_s"] = round(time.monotonic() - start, 1)
    # With binfmt's fix-binary flag the host's qemu is used anyway; the copy makes the root usable without it.
    shutil.copy2(QEMU, root / "usr/bin" / QEMU.name)
    start = time.monotonic()
    try:
        run(["chroot", root, "/debootstrap/debootstrap", "--second-stage"])
    except subprocess.CalledProcessError:
        log(f"the second stage failed (see {root}/debootstrap/debootstrap.log); delete {root} to start over")
        raise
    timings["debootstrap_second_stage_s"] = round(time.monotonic() - start, 1)
    (root / READY).write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))


def configure_root(root: Path) -> None:
    """DNS, CA certificates and pip settings from the host; the CPU list ai-edge-litert probes."""
    shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
    # Extra CA certificates (a TLS-intercepting proxy, say): keep them for a later
    # update-ca-certificates, and copy the host's bundle, which already holds them.
    local = Path("/usr/local/share/ca-certificates")
    if local.is_dir():
        shutil.copytree(local, root / local.relative_to("/"), dirs_exist_ok=True)
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.exists():
        shutil.copy2(bundle, root / bundle.relative_to("/"))
    # The host's pip.conf without settings that only make sense there (local x86 wheels, constraints).
    if Path("/etc/pip.conf").exists():
        config = configparser.ConfigParser()
        config.read("/etc/pip.conf")
        for section in config.sections():
            for key in ("find-links", "find_links", "constraint", "constraints", "no-index", "no_index"):
                config.remove_option(section, key)
        with open(root / "etc/pip.conf", "w") as out:
            config.write(out)
    # ai-edge-litert's cpuinfo reads these two files; without them it runs without XNNPACK, and
    # bind-mounting the host's /sys crashes it. Plain files are enough.
    cpus = root / "sys/devices/system/cpu"
    cpus.mkdir(parents=True, exist_ok=True)
    for name in ("possible", "present"):
        (cpus / name).write_text(f"0-{(os.cpu_count() or 1) - 1}\n")


# --------------------------------------------------------------------------------------------------
# 3. livedroid in the root, installed as on a Pi
# --------------------------------------------------------------------------------------------------


def copy_package(target: Path) -> None:
    """What ``pip install .`` reads from the working tree (pyproject, both packages, the shipped
    models it installs as data files) -> ``target``, e.g. ROOT/opt/livedroid-src."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, target / name)
    # The files git sees (tracked, or new and not ignored): no caches, no build outputs.
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z",
                             "livedroid", "training", "models"],
                            cwd=REPO, check=True, capture_output=True, text=True).stdout
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)


def install_package(root: Path, timings: dict) -> str:
    """``python3 -m venv`` + plain ``pip install`` of the base package; returns ``pip freeze``."""
    copy_package(root / SRC.lstrip("/"))
    start = time.monotonic()
    if not (root / VENV.lstrip("/") / "bin" / "livedroid").exists():
        in_root(root, f"python3 -m venv {VENV} && pip install {SRC}")
        timings["pip_install_s"] = round(time.monotonic() - start, 1)
    else:  # dependencies already there: refresh livedroid itself from the working tree
        in_root(root, f"pip install --no-deps --force-reinstall {SRC}")
        timings["pip_reinstall_livedroid_s"] = round(time.monotonic() - start, 1)
    freeze = in_root(root, "pip freeze --exclude-editable && python3 -V && ldd --version | head -1", capture=True).stdout
    if re.search(r"^(tensorflow|tf-keras|keras)\b", freeze, re.M | re.I):
        raise AssertionError(f"the base install pulled in TensorFlow:\n{freeze}")
    return freeze


# --------------------------------------------------------------------------------------------------
# 4.-6. Clip, the two runs, the comparison
# --------------------------------------------------------------------------------------------------


def make_clip(source: Path, target: Path, frames: int, start: int) -> None:
    """``frames`` frames of ``source`` from frame ``start``, re-encoded as H.264 (PyAV, on the host)."""
    import av

    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream = src.streams.video[0]
        rate = stream.average_rate or Fraction(25)
        out = dst.add_stream("libx264", rate=rate)
        out.width, out.height, out.pix_fmt = stream.width, stream.height, "yuv420p"
        written = 0
        for index, frame in enumerate(src.decode(stream)):
            if index < start:
                continue
            picture = frame.reformat(format="yuv420p")
            picture.pts, picture.time_base = written, 1 / Fraction(rate)
            for packet in out.encode(picture):
                dst.mux(packet)
            written += 1
            if written == frames:
                break
        for packet in out.encode():
            dst.mux(packet)
    if written != frames:
        raise SystemExit(f"{source} has fewer than {start + frames} frames")


def livedroid_args(clip: str, jsonl: str, video: str, threads: int) -> str:
    return f"run {clip} --jsonl {jsonl} -o {video} --threads {threads} --overwrite --no-progress"


def run_host(work: Path, threads: int) -> tuple[float, str]:
    exe = Path(sys.executable).with_name("livedroid")
    cmd = [str(exe) if exe.exists() else shutil.which("livedroid") or "livedroid",
           *livedroid_args(str(work / "clip.mp4"), str(work / "host.jsonl"), str(work / "host.mp4"), threads).split()]
    log("(x86-64) $ " + " ".join(cmd))
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)
    return time.monotonic() - start, done.stdout + done.stderr


def run_emulated(root: Path, threads: int, cpu: str) -> tuple[float, str]:
    args = livedroid_args(f"{WORK}/clip.mp4", f"{WORK}/arm64.jsonl", f"{WORK}/arm64.mp4", threads)
    start = time.monotonic()
    # From a folder without ./models: the default model must come with the installed package.
    done = in_root(root, f"cd {WORK} && uname -m && livedroid {args}", capture=True, cpu=cpu)
    return time.monotonic() - start, done.stdout + done.stderr


def compare_detections(host: list[dict], arm: list[dict], threshold: float = 0.5) -> tuple[list[str], dict]:
    """Problems (empty when they agree) and statistics. Per frame, detections are matched greedily by
    class and IoU; one found on one side only is tolerated when its score is within SCORE_TOL of the
    threshold (the other side's score fell just under it)."""
    problems, stats = [], {"frames": len(host), "detections_host": 0, "detections_arm64": 0, "matched": 0,
                           "min_iou": 1.0, "max_score_diff": 0.0, "max_box_diff_px": 0.0, "borderline_unmatched": 0}
    if len(host) != len(arm):
        problems.append(f"{len(host)} records on x86-64, {len(arm)} on arm64")
    for h, a in zip(host, arm):
        if h["frame"] != a["frame"]:
            problems.append(f"frame numbers differ: {h['frame']} vs {a['frame']}")
            continue
        stats["detections_host"] += len(h["detections"])
        stats["detections_arm64"] += len(a["detections"])
        left = list(a["detections"])
        for d in sorted(h["detections"], key=lambda d: -d["score"]):
            match = best_same_class(d["box"], d["class_id"], [o["box"] for o in left], [o["class_id"] for o in left]) if left else None
            best = (match[1], left[match[0]]) if match else None
            if best is None or best[0] <= IOU_MIN:
                if d["score"] < threshold + SCORE_TOL:
                    stats["borderline_unmatched"] += 1
                    continue
                problems.append(f"frame {h['frame']}: x86-64 {d['label']} {d['score']:.3f} {d['box']} has no arm64 match"
                                + (f" (best IoU {best[0]:.3f})" if best else ""))
                continue
            overlap, o = best
            left.remove(o)
            stats["matched"] += 1
            stats["min_iou"] = min(stats["min_iou"], overlap)
            diff = abs(d["score"] - o["score"])
            stats["max_score_diff"] = max(stats["max_score_diff"], diff)
            stats["max_box_diff_px"] = max(stats["max_box_diff_px"], max(abs(p - q) for p, q in zip(d["box"], o["box"])))
            if diff > SCORE_TOL:
                problems.append(f"frame {h['frame']}: {d['label']} score {d['score']:.3f} vs {o['score']:.3f}")
        for o in left:
            if o["score"] < threshold + SCORE_TOL:
                stats["borderline_unmatched"] += 1
            else:
                problems.append(f"frame {a['frame']}: arm64 {o['label']} {o['score']:.3f} {o['box']} has no x86-64 match")
    for key in ("min_iou", "max_score_diff", "max_box_diff_px"):
        stats[key] = round(stats[key], 4)
    return problems, stats


def decode_video(path: Path):
    import av
    import numpy as np

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in container.decode(video=0)]


def compare(work: Path, frames: int) -> tuple[list[str], dict]:
    read = lambda p: [json.loads(line) for line in p.read_text().splitlines() if line.strip()]  # noqa: E731
    host, arm = read(work / "host.jsonl"), read(work / "arm64.jsonl")
    problems, stats = compare_detections(host, arm)
    if len(host) != frames:
        problems.append(f"{len(host)} JSON Lines records for a {frames}-frame clip")
    videos = {}
    for side in ("host", "arm64"):
        try:
            videos[side] = decode_video(work / f"{side}.mp4")
        except Exception as error:  # noqa: BLE001
            problems.append(f"{side}.mp4 does not decode: {error}")
            continue
        if len(videos[side]) != frames:
            problems.append(f"{side}.mp4 has {len(videos[side])} frames, the clip {frames}")
    if len(videos) == 2 and len(videos["host"]) == len(videos["arm64"]):
        diffs = [float(abs(h - a).mean()) for h, a in zip(videos["host"], videos["arm64"]) if h.shape == a.shape]
        if len(diffs) != len(videos["host"]):
            problems.append("the two output videos differ in size")
        elif diffs:
            stats["video_mean_abs_diff_max"] = round(max(diffs), 3)
            # The inputs differ by ±3 levels (yuv->rgb) and x264 amplifies that a little: 3-4 levels
            # on average were measured; a blank or shifted video would be off by tens.
            if max(diffs) > 8.0:
                problems.append(f"the output videos differ by {max(diffs):.2f} levels on average")
    return problems, stats


def summary_line(output: str) -> str:
    lines = [line for line in output.splitlines() if "frames read" in line]
    return lines[-1].strip() if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"the arm64 root, built once and reused (default {DEFAULT_ROOT})")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="the real clip to cut the test clip from")
    parser.add_argument("--start", type=int, default=88, help="first frame of the clip to use (default 88: a person in view)")
    parser.add_argument("--frames", type=int, default=8, help="frames in the test clip (default 8; emulation is slow)")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads on both sides (default 2)")
    parser.add_argument("--cpu", default=DEFAULT_CPU, help=f"CPU qemu emulates for the run: cortex-a76 (Pi 5), cortex-a72 (Pi 4; slower to emulate) (default {DEFAULT_CPU})")
    parser.add_argument("--check", action="store_true", help="only check whether this machine can run it")
    parser.add_argument("--compare-only", action="store_true", help="only compare the outputs of the last run again")
    args = parser.parse_args(argv)

    root = args.root.resolve()
    if args.compare_only:
        problems, stats = compare(root / WORK.lstrip("/"), args.frames)
        print(json.dumps({"ok": not problems, "problems": problems, "comparison": stats}, indent=2))
        return 0 if not problems else 1
    try:
        check_prerequisites(root)
    except Unavailable as reason:
        print(f"arm64 emulation unavailable: {reason}", flush=True)
        return 3
    if args.check:
        print("arm64 emulation can run here", flush=True)
        return 0
    if not args.clip.exists():
        print(f"arm64 emulation unavailable: no clip {args.clip} (give --clip)", flush=True)
        return 3

    timings: dict = {}
    total = time.monotonic()
    build_root(root, timings)
    configure_root(root)
    work = root / WORK.lstrip("/")
    work.mkdir(parents=True, exist_ok=True)
    for name in ("host.jsonl", "host.mp4", "arm64.jsonl", "arm64.mp4"):
        (work / name).unlink(missing_ok=True)
    make_clip(args.clip, work / "clip.mp4", args.frames, args.start)
    with mounted(root):
        freeze = install_package(root, timings)
        log("installed in the root:\n" + freeze)
        seconds, arm_output = run_emulated(root, args.threads, args.cpu)
    log(arm_output.strip())
    timings["emulated_run_s"] = round(seconds, 1)
    timings["emulated_run_per_frame_s"] = round(seconds / args.frames, 2)
    seconds, host_output = run_host(work, args.threads)
    timings["host_run_s"] = round(seconds, 2)
    timings["total_s"] = round(time.monotonic() - total, 1)

    problems, stats = compare(work, args.frames)
    result = {"ok": not problems, "problems": problems, "comparison": stats, "timings": timings,
              "arm64_summary": summary_line(arm_output), "host_summary": summary_line(host_output),
              "arm64_machine": arm_output.splitlines()[0].strip() if arm_output else "",
              "arm64_model": next((l.strip() for l in arm_output.splitlines() if l.startswith("livedroid: model")), ""),
              "arm64_packages": freeze.split("\n"), "frames": args.frames, "threads": args.threads, "qemu_cpu": args.cpu}
    (work / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    log("arm64 run:  " + result["arm64_summary"])
    log("x86-64 run: " + result["host_summary"])
    log("comparison: " + json.dumps(stats))
    log("timings:    " + json.dumps(timings))
    for problem in problems:
        log("MISMATCH " + problem)
    log(("OK: arm64 and x86-64 agree" if not problems else "FAILED") + f" (details in {work / 'result.json'})")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
