"""Map the class names typed in annotation tools onto the label map's names.

labelImg users type names by hand, so ``bb8`` and ``BB-8`` both occur. Unknown names are an error
that names the files and suggests the close match; ``--label-alias bb8=BB-8`` maps a name
explicitly, and ``--match-label-names`` maps names that differ from the label map's only in case
and punctuation (or, with no label map, merges such names into one class).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict

from livedroid.annotations import AnnotatedImage, Problem
from livedroid.errors import UserError

_EXAMPLES_SHOWN = 3


def parse_aliases(specs: list[str]) -> dict[str, str]:
    """``["r2d2=R2-D2", ...]`` → ``{"r2d2": "R2-D2"}``."""
    aliases = {}
    for spec in specs:
        name, sep, target = spec.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise UserError(f"--label-alias {spec!r}: expected NAME=LABEL, for example r2d2=R2-D2")
        aliases[name.strip()] = target.strip()
    return aliases


def normalized(name: str) -> str:
    """The name compared loosely: lower case, letters and digits only (``R2-D2`` → ``r2d2``)."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def apply_label_map(
    images: list[AnnotatedImage],
    label_map: dict[int, str] | None,
    aliases: dict[str, str],
    match_label_names: bool,
    problems: list[Problem],
) -> dict[int, str]:
    """Rename every box's label to a label-map name, in place, and return the label map.

    Without a label map, one is derived from the (aliased) names (:func:`derive_label_map`). Boxes
    with an empty name are dropped and reported; names that match nothing raise one UserError that
    lists them all.
    """
    if label_map is None:
        label_map = derive_label_map(images, aliases, match_label_names)
    known = set(label_map.values())
    for name, target in aliases.items():
        if target not in known:
            raise UserError(f"--label-alias {name}={target}: '{target}' is not in the label map ({_listing(known)})")
    loose = {normalized(name): name for name in known} if match_label_names else {}

    unknown: dict[str, list[str]] = defaultdict(list)
    for image in images:
        kept = []
        for box in image.boxes:
            target = box.label if box.label in known else aliases.get(box.label) or loose.get(normalized(box.label))
            if not box.label:
                problems.append(Problem(image.source, "an object has an empty <name>", "dropped box"))
                image.boxes_dropped += 1
            elif target is None:
                unknown[box.label].append(image.source)
            else:
                box.label = target
                kept.append(box)
        image.boxes = kept
    if unknown:
        raise UserError(_unknown_names_message(unknown, known))
    return label_map


def derive_label_map(images: list[AnnotatedImage], aliases: dict[str, str], match_label_names: bool) -> dict[int, str]:
    """The label map of the (aliased) names boxed, sorted, ids from 1. Names alike in case and
    punctuation (``BB-8``, ``bb8``) become one class under ``match_label_names``, spelled as most
    boxes spell it; without it, one line says which names look alike."""
    counts = Counter(aliases.get(b.label, b.label) for image in images for b in image.boxes if b.label)
    alike: dict[str, list[str]] = defaultdict(list)
    for name in sorted(counts, key=lambda n: (-counts[n], n)):
        alike[normalized(name)].append(name)
    groups = [spellings for spellings in alike.values() if len(spellings) > 1]
    if groups and match_label_names:
        merged = ", ".join(f"{' and '.join(spellings[1:])} → {spellings[0]}" for spellings in groups)
        print(f"--match-label-names: {merged} (names alike in case and punctuation; the spelling of most boxes kept)")
        names = {spellings[0] for spellings in alike.values()}
    else:
        if groups:
            listed = "; ".join(" / ".join(spellings) for spellings in groups)
            print(f"class names alike in case and punctuation stay separate classes: {listed} (--match-label-names merges them)")
        names = set(counts)
    return {i: name for i, name in enumerate(sorted(names), start=1)}


def _unknown_names_message(unknown: dict[str, list[str]], known: set[str]) -> str:
    lines = [f"{len(unknown)} class name(s) in the annotations are not in the label map ({_listing(known)}):"]
    fixes = []
    for name, sources in sorted(unknown.items()):
        files = sorted(set(sources))
        shown = ", ".join(files[:_EXAMPLES_SHOWN]) + (f" and {len(files) - _EXAMPLES_SHOWN} more" if len(files) > _EXAMPLES_SHOWN else "")
        match = _close_match(name, known)
        hint = f"; did you mean '{match}'?" if match else ""
        lines.append(f"  '{name}': {len(sources)} box(es) in {shown}{hint}")
        if match:
            fixes.append(f"--label-alias {name}={match}")
    lines.append("Fix the names in the annotation files, or map them on the command line:")
    if fixes:
        lines.append("  " + " ".join(fixes))
    lines.append("  (--match-label-names maps names that differ only in case and punctuation, like bb8 → BB-8)")
    return "\n".join(lines)


def _close_match(name: str, known: set[str]) -> str | None:
    by_loose = {normalized(k): k for k in known}
    if normalized(name) in by_loose:
        return by_loose[normalized(name)]
    found = difflib.get_close_matches(normalized(name), list(by_loose), n=1, cutoff=0.6)
    return by_loose[found[0]] if found else None


def _listing(names: set[str]) -> str:
    return ", ".join(sorted(names)) or "empty"
