"""JSON that every parser reads: NaN and infinities (Python's json writes them, browsers'
``JSON.parse`` refuses them) become null, so one odd figure never breaks a whole response."""

from __future__ import annotations

import json
import math


def dumps(value: object) -> str:
    """``value`` as strict JSON; non-finite floats, however deep, as null."""
    return json.dumps(finite(value), allow_nan=False)


def finite(value: object) -> object:
    """``value`` with every non-finite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value
