from pathlib import Path

import pytest

from livedroid.errors import UserError
from livedroid.models import DEFAULT_MODEL, resolve_model


def test_default_model_ships_with_the_repository() -> None:
    path = resolve_model(None)
    assert path.name == "detect.tflite" and path.parent.name == DEFAULT_MODEL and path.is_file()


def test_names_are_looked_up_in_livedroid_models(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "droids").mkdir()
    (tmp_path / "droids" / "model_int8.tflite").write_bytes(b"x")
    (tmp_path / "droids" / "model.tflite").write_bytes(b"x")
    monkeypatch.setenv("LIVEDROID_MODELS", str(tmp_path))
    assert resolve_model("droids") == tmp_path / "droids" / "model_int8.tflite"


def test_a_folder_path_picks_its_model_file(tmp_path: Path) -> None:
    (tmp_path / "saved_model").mkdir()
    (tmp_path / "saved_model" / "saved_model.pb").write_bytes(b"x")
    assert resolve_model(str(tmp_path)) == tmp_path / "saved_model"
    assert resolve_model(str(tmp_path / "saved_model")) == tmp_path / "saved_model"


def test_unknown_name_lists_the_known_ones(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=f"model 'wookiee' not found .*{DEFAULT_MODEL}"):
        resolve_model("wookiee")
