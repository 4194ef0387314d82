"""Pre-trained checkpoints: folders, and zoo archives downloaded from a local server."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from livedroid.errors import UserError
from tests.training.conftest import make_zoo_archive
from livedroid.training import zoo

NAME = "ssd_mobilenet_v2_320x320_coco17_tpu-8"
CHECKPOINT = {"ckpt-0.index": b"index", "ckpt-0.data-00000-of-00001": b"weights", "checkpoint": b"model_checkpoint_path: 'ckpt-0'"}


@pytest.fixture
def served_zoo(http_folder, tmp_path, monkeypatch):
    folder, url = http_folder
    archive = make_zoo_archive(folder, NAME, CHECKPOINT)
    monkeypatch.setenv("LIVEDROID_ZOO_URL", url)
    monkeypatch.setenv("LIVEDROID_CACHE", str(tmp_path / "cache"))
    return archive


def test_zoo_name_downloads_checks_and_caches(served_zoo, monkeypatch):
    digest = hashlib.sha256(served_zoo.read_bytes()).hexdigest()
    monkeypatch.setitem(zoo.ZOO_MODELS, NAME, dataclasses.replace(zoo.ZOO_MODELS[NAME], sha256=digest))
    pretrained = zoo.resolve_pretrained(NAME)
    assert pretrained.prefix == zoo.cache_dir() / NAME / "checkpoint" / "ckpt-0"
    assert pretrained.template == "ssd_mobilenet_v2_320"
    assert (zoo.cache_dir() / f"{NAME}.tar.gz.sha256").read_text().strip() == digest
    served_zoo.unlink()  # the cache answers now
    assert zoo.resolve_pretrained(NAME).prefix == pretrained.prefix


def test_checksum_mismatch_deletes_the_download(served_zoo, monkeypatch):
    monkeypatch.setitem(zoo.ZOO_MODELS, NAME, dataclasses.replace(zoo.ZOO_MODELS[NAME], sha256="0" * 64))
    with pytest.raises(UserError, match="expected 0000"):
        zoo.resolve_pretrained(NAME)
    assert not (zoo.cache_dir() / f"{NAME}.tar.gz").exists()
    assert not (zoo.cache_dir() / NAME).exists()


def test_unreachable_server_says_how_to_work_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEDROID_ZOO_URL", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setenv("LIVEDROID_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="pass its extracted folder to --pretrained"):
        zoo.resolve_pretrained(NAME)
    assert not list((tmp_path / "cache" / "zoo").glob("*.part"))


def test_archive_with_entries_outside_its_folder_is_refused(http_folder, tmp_path, monkeypatch):
    folder, url = http_folder
    make_zoo_archive(folder, "other", CHECKPOINT).rename(folder / f"{NAME}.tar.gz")
    monkeypatch.setenv("LIVEDROID_ZOO_URL", url)
    monkeypatch.setenv("LIVEDROID_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="unexpected entries outside"):
        zoo.resolve_pretrained(NAME)


@pytest.mark.parametrize("layout", ["folder", "checkpoint subfolder", "prefix"])
def test_checkpoint_folder_resolves_to_newest_prefix(tmp_path, layout):
    folder = tmp_path / "run"
    where = folder / "checkpoint" if layout == "checkpoint subfolder" else folder
    where.mkdir(parents=True)
    for step in (2, 10, 9):
        (where / f"ckpt-{step}.index").write_bytes(b"")
    spec = str(where / "ckpt-10") if layout == "prefix" else str(folder)
    assert zoo.resolve_pretrained(spec).prefix == where / "ckpt-10"


def test_unknown_name_lists_the_zoo_models():
    with pytest.raises(UserError, match="ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8"):
        zoo.resolve_pretrained("ssd_mobilenet_v3")


def test_none_means_random_weights():
    assert zoo.resolve_pretrained("none") is None
