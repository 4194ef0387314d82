"""The user's YAML and JSON settings files (``serve --config``, ``run --analytics``), read one
safe way, and the one-line messages naming a file's wrong value.

Anchors and aliases are refused: a settings file needs none, and nested aliases expand
exponentially (585 bytes took 79 s and 1.6 GB before a MemoryError). Files are capped in size
before parsing: a settings file is a few kilobytes.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import yaml

from livedroid.errors import UserError

#: A settings file is a few kilobytes; a larger one is a mistake (or an attack), refused before parsing.
MAX_FILE_BYTES = 256 * 1024
#: The most characters of a user's value an error message shows.
SHOWN_CHARS = 60


class NoAliasLoader(yaml.SafeLoader):
    """YAML's safe subset without anchors and aliases (&name, *name)."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.YAMLError(f"line {event.start_mark.line + 1}: anchors and aliases (& and *) are not allowed; "
                                 "repeat the value instead")
        return super().compose_node(parent, index)


def load_document(path: str | Path, what: str) -> object:
    """The parsed content of a ``.yaml``/``.yml`` or ``.json`` file (``what`` names it in
    messages: "config file"); every failure is one line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise UserError(f"{path}: {size} bytes; {_article(what)} {what} is at most {MAX_FILE_BYTES // 1024} KiB")
    is_json = path.suffix.lower() == ".json"
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if is_json else yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except (yaml.YAMLError, ValueError) as error:
        raise UserError(f"{path}: not valid {'JSON' if is_json else 'YAML'} ({str(error).splitlines()[0]})") from None


def shown(value: object) -> str:
    """A user's value for an error message: its repr, shortened (a value may be megabytes)."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS - 1]}…"


def check_keys(mapping: dict, known: list[str], where: str) -> None:
    """Refuse a key not in ``known``, suggesting the closest (a typo is silently ignored otherwise)."""
    for key in mapping:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"
            raise UserError(f"{where}: unknown key {shown(key)}{hint}")


def wrong(where: str, key: str, expected: str, value: object) -> UserError:
    return UserError(f"{where}: {key}: expected {expected}, got {shown(value)}")


def class_names(value: object, where: str, key: str = "classes") -> list[str] | None:
    """Class names: a list of texts, or one text with commas (``classes: person`` is one class,
    as ``--classes person`` is)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise wrong(where, key, "a list of class names", value)
    return [name.strip() for name in value if name.strip()] or None


def _article(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"
