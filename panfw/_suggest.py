"""Did-you-mean suggestions for names and keys."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return ' (did you mean "x"?)' for the closest known name, or ''."""
    by_lower = {str(k).lower(): str(k) for k in known}
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.6)
    return f' (did you mean "{by_lower[close[0]]}"?)' if close else ""


def known_list(known: Iterable[str]) -> str:
    """Format known names for an error message."""
    names = sorted(known)
    return ", ".join(names) if names else "(none registered)"
