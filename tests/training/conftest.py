"""Tiny datasets made on the fly: a labelImg folder (coloured rectangles on noise, one Pascal VOC
XML each) and a folder as ``mine`` writes it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from livedroid.annotations import AnnotatedImage, Box
from livedroid.labelling.dataset import LabellingFolder

# Class name → rectangle colour; the detector can learn colours in a few steps.
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220)}


def voc_xml(filename: str, width: int, height: int, objects: list[tuple[str, tuple[float, float, float, float]]]) -> str:
    """Pascal VOC XML as labelImg writes it."""
    parts = [f"<annotation><folder>images</folder><filename>{filename}</filename>"]
    parts.append(f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>")
    for name, (xmin, ymin, xmax, ymax) in objects:
        parts.append(
            f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
            f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
        )
    parts.append("</annotation>")
    return "".join(parts)


def make_voc_dataset(root: Path, count: int = 8, size: tuple[int, int] = (96, 72), seed: int = 0) -> Path:
    """``count`` JPEGs in ``root/images`` with one rectangle each (classes alternate) and their XML
    in ``root/annotations``; returns ``root``."""
    rng = np.random.default_rng(seed)
    width, height = size
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    names = list(COLOURS)
    for index in range(count):
        name = names[index % len(names)]
        pixels = rng.integers(90, 160, (height, width, 3), dtype=np.uint8)
        w, h = int(rng.integers(width // 4, width // 2)), int(rng.integers(height // 4, height // 2))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        pixels[y : y + h, x : x + w] = COLOURS[name]
        pixels[:3], pixels[-3:] = 0, 255  # full pixel range, as int8 calibration expects of photos
        filename = f"{name}_{index}.jpg"
        Image.fromarray(pixels).save(root / "images" / filename, quality=95)
        xml = voc_xml(filename, width, height, [(name, (x, y, x + w, y + h))])
        (root / "annotations" / f"{name}_{index}.xml").write_text(xml, encoding="utf-8")
    return root


def jpeg(pixels: np.ndarray, quality: int = 95) -> bytes:
    stream = io.BytesIO()
    Image.fromarray(pixels).save(stream, format="JPEG", quality=quality)
    return stream.getvalue()


def make_mined_folder(root: Path, videos: dict[str, str], frames: int = 6, seed: int = 1) -> Path:
    """A folder as ``mine`` writes it and ``review`` leaves it: per video (name → class), frames
    of a square drifting right over one background, each recorded with its source video."""
    folder = LabellingFolder(root)
    rng = np.random.default_rng(seed)
    records = []
    for video, label in videos.items():
        background = rng.integers(60, 200, (9, 12, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        for index in range(frames):
            pixels = background.copy()
            x = 10 + 2 * index
            pixels[20:50, x : x + 30] = COLOURS[label]
            name = f"{video}-f{index:06d}.jpg"
            folder.save_image(AnnotatedImage(name, name, [Box(label, x, 20, x + 30, 50)], width=96, height=72), jpeg(pixels))
            records.append({"image": name, "source": f"/videos/{video}.mp4", "frame": index * 10, "reasons": ["near threshold"]})
    folder.write_label_map({1: "blue", 2: "red"})
    folder.append_records(records)
    folder.write_coco()
    return root


@pytest.fixture
def voc_dataset(tmp_path: Path) -> Path:
    return make_voc_dataset(tmp_path / "data")


@pytest.fixture
def http_folder(tmp_path: Path):
    """Serve a fresh folder on 127.0.0.1; yields (folder, base URL). Quiet, stopped afterwards."""
    import functools
    import http.server
    import threading

    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def make_zoo_archive(folder: Path, name: str, checkpoint_files: dict[str, bytes]) -> Path:
    """A Detection Zoo style archive: ``name/checkpoint/<files>`` and ``name/pipeline.config``."""
    import io
    import tarfile

    archive = folder / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for member, data in {**{f"checkpoint/{k}": v for k, v in checkpoint_files.items()}, "pipeline.config": b""}.items():
            info = tarfile.TarInfo(f"{name}/{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive
