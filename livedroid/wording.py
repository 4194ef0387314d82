"""How livedroid words counts in the lines it prints."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """``1 frame``, ``2 frames``: the count with its noun agreeing."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
