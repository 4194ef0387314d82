"""The service drives the engine; the engine never reaches back up to it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "livedroid"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_command_line_imports_the_service() -> None:
    below = [p for p in PACKAGE.rglob("*.py") if not {"service", "commands"} & set(p.relative_to(PACKAGE).parts)
             and p.name != "cli.py"]
    assert len(below) > 20
    reaching_up = {str(p.relative_to(PACKAGE)) for p in below
                   if any(m == "livedroid.service" or m.startswith("livedroid.service.") for m in imported_modules(p))}
    assert reaching_up == set()
    assert "livedroid.service.command" in imported_modules(PACKAGE / "commands" / "serve.py")
