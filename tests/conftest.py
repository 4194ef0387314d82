"""Shared fixtures: clips written with PyAV, the ../shared material, and a CLI runner."""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

# One pytest process runs the runtime's tests, which build small models with tf.keras, and the
# training tests, which need the Object Detection API: both must see Keras 2 (tf-keras), and the
# choice is made once, at TensorFlow's first import (see training/compat.py).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding a slow test (training, conversion) run first, in their order. Under
    pytest-xdist's ``--dist loadfile`` a worker takes the next file when it is free: the long
    files start early, beside the short ones, instead of leaving one worker busy at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


def skip_unless_ci(reason: str) -> None:
    """Skip for a missing prerequisite (a system part, an extra, ../shared), except in CI
    (``CI=true``), which installs every one: fail there, so that a broken install cannot pass as
    skips. Works inside a test and at module level."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI must have it", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def needs_module(name: str, reason: str) -> object:
    """``pytest.importorskip`` under the CI rule of :func:`skip_unless_ci`."""
    try:
        return importlib.import_module(name)
    except ImportError:
        skip_unless_ci(f"needs {name}: {reason}")


def shared_path(relative: str) -> Path:
    """A file of ../shared, or skip the test with the reason (fail under ``CI=true``)."""
    path = SHARED / relative
    if not path.exists():
        skip_unless_ci(f"needs ../shared/{relative} (real test material beside the repository)")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], object], seconds: float = 180, what: str = "the condition", poll: float = 0.1) -> object:
    """``condition()``'s first truthy value within ``seconds``, else an AssertionError naming ``what``."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(poll)


def read_jsonl(path: Path, *, complete_only: bool = False) -> list[dict]:
    """The records of a JSON Lines file; ``complete_only``: leave out a line still being written."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if not complete_only or line.endswith("}")]


@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A real file system of its own at ``path`` for the test's length (``size=2m``, ``ro``): a disk
    that fills up or refuses writes. Mounting needs root (CAP_SYS_ADMIN)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if mounted.returncode != 0:
        skip_unless_ci(f"cannot mount a tmpfs ({mounted.stderr.strip()}): needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def square_position(index: int, width: int, height: int, side: int) -> tuple[int, int]:
    """Top-left corner of the red square in frame ``index`` of a test clip: it moves right."""
    x = (index * 7) % max(1, width - side)
    y = (height - side) // 2
    return x, y


def draw_square_frame(index: int, width: int, height: int, side: int) -> np.ndarray:
    image = np.full((height, width, 3), 60, np.uint8)
    x, y = square_position(index, width, height, side)
    image[y : y + side, x : x + side] = (230, 20, 20)
    return image


def write_clip(
    path: Path,
    *,
    frames: int = 30,
    size: tuple[int, int] = (160, 96),
    fps: int = 15,
    audio: str | None = "aac",
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    side: int = 32,
    audio_first: bool = False,
    format: str | None = None,
    draw: Callable[[int], np.ndarray] | None = None,
) -> Path:
    """A real clip: a red square moving over gray (or ``draw(index)``'s pictures), H.264 by default,
    with a 440 Hz audio track."""
    width, height = size
    with av.open(str(path), "w", format=format) as container:
        sound = None
        if audio and audio_first:
            sound = container.add_stream(audio, rate=44100)
        video = container.add_stream(codec, rate=fps)
        video.width, video.height = width, height
        video.pix_fmt = pix_fmt
        if audio and not audio_first:
            sound = container.add_stream(audio, rate=44100)
        if sound is not None:
            sound.layout = "stereo"
        for index in range(frames):
            image = draw(index) if draw else draw_square_frame(index, width, height, side)
            picture = av.VideoFrame.from_ndarray(image, format="rgb24")
            picture.pts = index
            picture.time_base = Fraction(1, fps)
            for packet in video.encode(picture):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            samples = int(44100 * frames / fps)
            t = np.arange(samples) / 44100
            wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            chunk = 1024
            for start in range(0, samples, chunk):
                block = np.tile(wave[start : start + chunk], (2, 1))
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
                frame.sample_rate = 44100
                frame.pts = start
                frame.time_base = Fraction(1, 44100)
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path


def probe(path: Path) -> dict:
    """What a user would check of a video: decoded frame count, duration, streams."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info = {
            "audio": [s.codec_context.codec.canonical_name for s in container.streams.audio],
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "codec": video.codec_context.codec.canonical_name,
            "pix_fmt": video.codec_context.pix_fmt,
            "duration": float(video.duration * video.time_base) if video.duration else None,
        }
        info["pts"] = [float(f.pts * f.time_base) for f in container.decode(video=0)]
        info["frames"] = len(info["pts"])
    return info


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "square.mp4")


@pytest.fixture
def default_model() -> Path:
    """The model shipped in the repository: tests that need just a model run on a bare clone."""
    return REPO / "models" / "coco-ssd-mobilenet-v2" / "detect.tflite"


@pytest.fixture
def coco_v1() -> Path:
    return shared_path("models/coco-ssd-mobilenet-v1-quant/detect.tflite")


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, module: str = "livedroid", **popen: object
) -> subprocess.CompletedProcess:
    """``livedroid ARGS`` in a subprocess, as a user runs it (``module``: a tests-only wrapper of it)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **popen,
    )


@pytest.fixture
def livedroid_main(capfd, monkeypatch) -> Callable[..., subprocess.CompletedProcess]:
    """``livedroid_main(*args, cwd=None)``: ``livedroid ARGS`` through the command line's own entry
    (:func:`livedroid.cli.main`) in this process, for the checks of what a command does with its
    input: the same parser, checks and one-line errors, without a Python start-up each. Returns
    what :func:`run_cli` returns; stdout and stderr are read at the file descriptors, so a library's
    noise shows as it would in a terminal. What users type as it is typed stays with :func:`run_cli`."""
    from livedroid.cli import main

    def call(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        capfd.readouterr()
        with monkeypatch.context() as patch:
            if cwd is not None:
                patch.chdir(cwd)
            # main points the "livedroid" logger at this test's captured stderr: put it back after
            logger = logging.getLogger("livedroid")
            for attribute in ("handlers", "level", "propagate"):
                patch.setattr(logger, attribute, getattr(logger, attribute) if attribute != "handlers" else list(logger.handlers))
            try:
                code = main(list(args))
            except SystemExit as exit:  # argparse's usage errors (2) and --help (0)
                code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(["livedroid", *args], code, out, err)

    return call


def start_cli_until(
    *args: str, cwd: Path, grows: Path, min_bytes: int, timeout: float = 60, module: str = "livedroid"
) -> subprocess.Popen:
    """``livedroid ARGS`` started in a subprocess, returned once ``grows`` (an output it writes)
    holds ``min_bytes``: the moment a test sends it a signal, or changes its input under it.
    stderr is piped, as text (``module``: a tests-only wrapper of it)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (not grows.exists() or grows.stat().st_size < min_bytes):
        time.sleep(0.05)
    return process


def _needs_tensorflow() -> None:
    needs_module("tensorflow", "building the tiny test detector needs TensorFlow (the train or tf extra)")


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory) -> Path:
    """The hand-weighted red-square detector as a float32 .tflite (labels packed)."""
    _needs_tensorflow()
    from tests.tiny_detector import build_tiny_tflite

    return build_tiny_tflite(tmp_path_factory.mktemp("tiny") / "tiny.tflite")


@pytest.fixture(scope="session")
def tiny_savedmodel(tmp_path_factory) -> Path:
    """The same detector as an Object Detection API SavedModel export (batch dimension free)."""
    _needs_tensorflow()
    from tests.tiny_detector import build_tiny_savedmodel

    return build_tiny_savedmodel(tmp_path_factory.mktemp("tiny") / "saved_model")


@pytest.fixture(scope="session")
def layout_model(tmp_path_factory) -> Callable[..., Path]:
    """``layout_model(layout, pixels=False, quantization="float32")``: the red-square model of an
    output layout (tests/yolo_detector.py) as a .tflite, built once a session."""
    _needs_tensorflow()
    from tests.yolo_detector import build

    folder, built = tmp_path_factory.mktemp("layouts"), {}

    def get(layout: str, pixels: bool = False, quantization: str = "float32") -> Path:
        key = (layout, pixels, quantization)
        if key not in built:
            built[key] = build(folder / f"{layout}-{'pixels' if pixels else 'normalised'}-{quantization}.tflite",
                               layout, pixels=pixels, quantization=quantization)
        return built[key]

    return get


@pytest.fixture(scope="session")
def onnx_layout_model(layout_model, tmp_path_factory) -> Callable[..., Path]:
    """``onnx_layout_model(layout, variant="float32", pixels=False)``: the red-square model of an
    output layout as ONNX, built once a session. Variants: ``float32`` (Ultralytics' form: NCHW
    float input, fixed batch 1), ``batch`` (the same, batch dimension free), ``metadata`` (with
    Ultralytics' names and imgsz), ``int8`` (the full-integer .tflite through tf2onnx: NHWC int8)."""
    needs_module("tf2onnx", "building the ONNX test models needs tf2onnx (the train extra)")
    needs_module("onnxruntime", "the onnx backend needs onnxruntime (the onnx extra)")
    from tests.yolo_detector import ULTRALYTICS_METADATA, build_onnx, onnx_from_tflite

    folder, built = tmp_path_factory.mktemp("onnx-layouts"), {}

    def get(layout: str, variant: str = "float32", pixels: bool = False) -> Path:
        key = (layout, variant, pixels)
        if key not in built:
            path = folder / f"{layout}-{variant}-{'pixels' if pixels else 'normalised'}.onnx"
            if variant == "int8":
                built[key] = onnx_from_tflite(layout_model(layout, pixels, "int8"), path)
            else:
                built[key] = build_onnx(path, layout, pixels=pixels, batch=None if variant == "batch" else 1,
                                        metadata=ULTRALYTICS_METADATA if variant == "metadata" else None)
        return built[key]

    return get


SYSTEM_PYTHON = "/usr/bin/python3"


class RtspServer:
    """tests/rtsp_server.py run by the system Python: start, stop, and restart on the same port."""

    def __init__(self, *args: str) -> None:
        self.args = list(args)
        self.port = 0
        self.process: subprocess.Popen | None = None

    def start(self) -> "RtspServer":
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(REPO / "tests" / "rtsp_server.py"), "--port", str(self.port), *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line} {self.process.stderr.read()}")
        self.port = int(line)
        return self

    def url(self, credentials: str = "") -> str:
        return f"rtsp://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}/stream"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def rtsp_server():
    """Start real RTSP servers (``rtsp_server(*args)``); all are stopped after the test."""
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"],
        capture_output=True,
    ) if Path(SYSTEM_PYTHON).exists() else None
    if probe is None or probe.returncode != 0:
        skip_unless_ci("needs GStreamer's RTSP server for the system Python (Debian: gir1.2-gst-rtsp-server-1.0 "
                       "python3-gi gstreamer1.0-plugins-ugly); .ci/run installs it")
    servers: list[RtspServer] = []

    def start(*args: str) -> RtspServer:
        servers.append(RtspServer(*args).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
