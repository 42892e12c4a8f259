"""``did you mean 'high'?``: the nearest known value to a mistyped id, key or enum value."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(given: object, options: Iterable[str]) -> str | None:
    """The known option closest to ``given``: the same text in another case, the one option it
    abbreviates (``prod``), or the closest spelling."""
    text = str(given)
    known = [str(o) for o in options]
    folded = {o.lower().replace(" ", "-").replace("_", "-"): o for o in known}
    key = text.lower().replace(" ", "-").replace("_", "-")
    if key in folded:
        return folded[key]
    if len(key) >= 3:
        starting = [o for o in folded if o.startswith(key)]
        if len(starting) == 1:
            return folded[starting[0]]
    close = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None


def did_you_mean(given: object, options: Iterable[str]) -> str:
    """`` (did you mean 'high'?)`` or nothing, to append to a message."""
    found = nearest(given, options)
    return f" (did you mean '{found}'?)" if found is not None and found != str(given) else ""
