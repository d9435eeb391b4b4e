"""
The "did you mean" hint of every error message that names an unknown name.

One helper so that all of them suggest the same way (``difflib`` similarity, the single closest
candidate, nothing when none is close) and read the same in the messages. Standard library only.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: How similar (``difflib`` ratio) a candidate must be to be suggested.
DEFAULT_CUTOFF = 0.6


def closest(name: str, candidates: Iterable[str], *, cutoff: float = DEFAULT_CUTOFF) -> str | None:
    """The candidate closest to ``name``, or None when none is similar enough."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=cutoff)
    return matches[0] if matches else None


def did_you_mean(
    name: str, candidates: Iterable[str], *, cutoff: float = DEFAULT_CUTOFF, parenthesized: bool = False
) -> str:
    """
    ``"; did you mean 'x'?"`` (or ``" (did you mean 'x'?)"``) to append to a message, or ``""``.

    :param parenthesized: the form for a message that goes on with ``;`` after the hint.
    """
    match = closest(name, candidates, cutoff=cutoff)
    if match is None:
        return ""
    return f" (did you mean {match!r}?)" if parenthesized else f"; did you mean {match!r}?"
