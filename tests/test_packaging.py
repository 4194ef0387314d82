"""The package list in pyproject.toml is explicit (training/ installs as livedroid.training, models/
as the data-only livedroid.shipped_models): every package folder must be in it, or a wheel
silently lacks it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    def folder(name: str) -> Path:  # setuptools' rule: the longest mapped prefix, then the rest as folders
        prefix = max((p for p in config["package-dir"] if name == p or name.startswith(p + ".")), key=len, default="")
        rest = name[len(prefix):].lstrip(".").split(".") if name != prefix else []
        return ROOT.joinpath(config["package-dir"][prefix] if prefix else "", *rest) if prefix else ROOT.joinpath(*name.split("."))

    folders = {name: folder(name) for name in config["packages"]}
    data_only = {name for name, path in folders.items() if not any(path.rglob("*.py"))}
    assert data_only == {"livedroid.shipped_models", "livedroid.training.configs", "livedroid.training.data"}, data_only
    assert all((folders[name] / "__init__.py").is_file() for name in set(folders) - data_only), folders
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "livedroid").rglob("__init__.py")}
    found |= {"livedroid." + ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "training").rglob("__init__.py")}
    assert found == set(config["packages"]) - data_only
