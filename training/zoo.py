"""Pre-trained start points for fine-tuning: a checkpoint folder, or a TF2 Detection Zoo model
name whose official archive is downloaded once into a cache (size and checksum checked)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tqdm import tqdm

from livedroid.errors import UserError

#: Where the TF2 Detection Zoo archives live; $LIVEDROID_ZOO_URL replaces it (mirrors, tests).
ZOO_URL = "http://download.tensorflow.org/models/object_detection/tf2/20200711"
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class ZooModel:
    """A Detection Zoo archive and the livedroid template whose architecture it fits.

    ``sha256`` is the archive's checksum when known; a download that does not match is deleted.
    Without one, the checksum of the first download is recorded and later uses are checked
    against it.
    """

    name: str
    template: str
    sha256: str | None = None


ZOO_MODELS = {
    model.name: model
    for model in (
        ZooModel("ssd_mobilenet_v2_320x320_coco17_tpu-8", "ssd_mobilenet_v2_320"),
        ZooModel("ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8", "ssd_mobilenet_v2_fpnlite_320"),
        ZooModel("ssd_resnet50_v1_fpn_640x640_coco17_tpu-8", "ssd_resnet50_v1_fpn_640"),
    )
}


@dataclass
class Pretrained:
    """A checkpoint to start from: ``prefix`` as TensorFlow names it (``.../ckpt-0``), and the
    template of its architecture when known (zoo models)."""

    prefix: Path
    template: str | None = None


def cache_dir() -> Path:
    """``$LIVEDROID_CACHE`` or ``~/.cache/livedroid``, plus ``zoo``."""
    base = os.environ.get("LIVEDROID_CACHE") or Path.home() / ".cache" / "livedroid"
    return Path(base) / "zoo"


COCO_START = "coco"  # the default start point: offline COCO weights (zoo_checkpoint.coco_start)
NO_START = "none"  # random weights, for the rare from-scratch run
COCO_START_TEMPLATE = "ssd_mobilenet_v2_300_coco_tf1"


def resolve_pretrained(spec: str, check_images: Callable[[], list[np.ndarray]] = list) -> Pretrained | None:
    """``spec`` is ``coco`` (imported offline once, checked on ``check_images()``), ``none``, a
    checkpoint folder (or prefix) or a TF2 zoo model name (downloaded if needed)."""
    if spec == NO_START:
        return None
    if spec == COCO_START:
        from livedroid.training.zoo_checkpoint import coco_start

        return Pretrained(coco_start(check_images), COCO_START_TEMPLATE)
    path = Path(spec)
    if path.exists() or Path(f"{spec}.index").exists():
        return Pretrained(checkpoint_prefix(path))
    model = ZOO_MODELS.get(spec)
    if model is None:
        raise UserError(
            f"--pretrained {spec}: no such checkpoint folder, and neither {COCO_START}, {NO_START} nor a "
            f"known TF2 Detection Zoo model ({', '.join(ZOO_MODELS)})"
        )
    folder = download_zoo_model(model)
    return Pretrained(checkpoint_prefix(folder / "checkpoint"), model.template)


def checkpoint_prefix(path: Path) -> Path:
    """The newest checkpoint in a folder (or its ``checkpoint/`` subfolder), or ``path`` itself
    when it already is a prefix."""
    if Path(f"{path}.index").is_file():
        return path
    for folder in (path, path / "checkpoint"):
        indexes = sorted(folder.glob("*.index"), key=lambda p: _checkpoint_number(p.stem))
        if indexes:
            return indexes[-1].with_suffix("")
    raise UserError(f"--pretrained {path}: no TensorFlow checkpoint (*.index) in it or in its checkpoint/ folder")


def download_zoo_model(model: ZooModel, base_url: str | None = None) -> Path:
    """The extracted archive folder in the cache, downloading it first when absent."""
    folder = cache_dir() / model.name
    if (folder / "checkpoint").is_dir():
        return folder
    base_url = (base_url or os.environ.get("LIVEDROID_ZOO_URL") or ZOO_URL).rstrip("/")
    archive = cache_dir() / f"{model.name}.tar.gz"
    digest = download(f"{base_url}/{model.name}.tar.gz", archive)
    recorded = archive.with_name(archive.name + ".sha256")
    expected = model.sha256 or (recorded.read_text().strip() if recorded.is_file() else None)
    if expected and digest != expected:
        archive.unlink()
        raise UserError(f"{model.name}: downloaded archive has sha256 {digest}, expected {expected}; deleted it, try again")
    recorded.write_text(digest + "\n")
    _extract(archive, cache_dir(), model.name)
    return folder


def download(url: str, destination: Path) -> str:
    """Download with a progress bar to ``destination`` (via a .part file); return its sha256.

    The byte count must equal the server's Content-Length: a cut connection is an error, not a
    corrupt cache entry.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            expected_size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=expected_size, unit="B", unit_scale=True, desc=f"downloading {Path(url).name}") as bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        size = partial.stat().st_size
        if expected_size is not None and size != expected_size:
            raise UserError(f"{url}: received {size} bytes, expected {expected_size}; try again")
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise UserError(
            f"cannot download {url} ({getattr(error, 'reason', error)}); when offline, download the archive "
            "elsewhere and pass its extracted folder to --pretrained"
        ) from None
    except UserError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(destination)
    return digest.hexdigest()


def _extract(archive: Path, into: Path, name: str) -> None:
    """Extract the archive's ``name/`` folder; anything outside it is refused."""
    temporary = into / f"{name}.extracting"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        with tarfile.open(archive) as tar:
            outside = [m.name for m in tar.getmembers() if not (m.name == name or m.name.startswith(f"{name}/"))]
            if outside:
                raise UserError(f"{archive}: unexpected entries outside {name}/ ({', '.join(outside[:3])})")
            # the "data" filter (Python 3.11.4+) refuses links and paths out of the folder; Debian
            # bookworm's 3.11.2 lacks it (the member names were checked above)
            tar.extractall(temporary, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    except (tarfile.TarError, EOFError, OSError) as error:
        raise UserError(f"{archive}: not a readable .tar.gz archive ({error}); delete it and try again") from None
    (temporary / name).replace(into / name)
    shutil.rmtree(temporary)


def _checkpoint_number(stem: str) -> int:
    digits = stem.rsplit("-", 1)[-1]
    return int(digits) if digits.isdigit() else -1
