"""How livedroid words counts and suggestions in the lines it prints."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 frame``, ``2 frames``; ``many`` for nouns that do not just take an s
    (``plural(n, "box", "boxes")``)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def did_you_mean(unknown: Iterable[str], known: Iterable[str]) -> str:
    """``"did you mean person?"``: the closest known name to each unknown one (case aside),
    or ``""`` when none is close."""
    by_lower = {name.lower(): name for name in known}
    matches = []
    for name in unknown:
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
        if close and by_lower[close[0]] not in matches:
            matches.append(by_lower[close[0]])
    return f"did you mean {', '.join(matches)}?" if matches else ""
