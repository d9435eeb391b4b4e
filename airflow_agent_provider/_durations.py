"""
The one grammar for written durations (``30s``, ``1h30m``, ``6m0s``, ``20ms``), shared by every parser.

Workflow files (``definitions/durations.py``: ``timeout: 2h``), retry settings (``base_delay: "30s"``)
and provider headers (OpenAI's ``x-ratelimit-reset-tokens: 6m0s``) all write durations the same way,
so they are read by this one function and cannot drift apart (one used to accept ``1d``, another did
not). The rules:

* a plain non-negative decimal number is seconds (``17``, ``0.5``);
* otherwise ``<number><unit>`` parts, units ``d h m s ms us µs ns``, each at most once and largest
  first (``1h30m``; not ``30m1h``), which is also what Go's ``Duration.String`` writes;
* case and blanks do not matter (``" 1D 2h "``); nothing else is accepted, and nothing is guessed.

A caller may narrow the units (workflow files take ``d h m s`` only). Standard library only: DAG
parsing and the resilience layer import it.
"""

from __future__ import annotations

import re
from collections.abc import Collection

#: Seconds per unit, largest first.
UNIT_SECONDS: dict[str, float] = {
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "ns": 1e-9,
}
_RANK = {"d": 0, "h": 1, "m": 2, "s": 3, "ms": 4, "us": 5, "µs": 5, "ns": 6}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Longer units first in the alternation so that "ms" is not read as "m" + "s".
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|d|h|m|s)")


class DurationSyntax(ValueError):
    """
    ``text`` is not a duration (private: callers turn it into their own message or into None).

    :param order: True when the parts are valid but repeated or not largest first.
    """

    def __init__(self, text: str, *, order: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.order = order


def parse_seconds(text: str, *, units: Collection[str] = UNIT_SECONDS) -> float:
    """
    Seconds in ``text`` by the rules above.

    :param units: the units allowed (default: all of them).
    :raises DurationSyntax: not a duration; ``order`` says whether only the order of the parts is wrong.
    """
    compact = "".join(text.split()).lower()
    if _NUMBER.fullmatch(compact):
        return float(compact)
    position, total, last_rank = 0, 0.0, -1
    for match in _PART.finditer(compact):
        number, unit = match.groups()
        if match.start() != position or unit not in units:
            raise DurationSyntax(text)
        rank = _RANK[unit]
        if rank <= last_rank:
            raise DurationSyntax(text, order=True)
        last_rank = rank
        total += float(number) * UNIT_SECONDS[unit]
        position = match.end()
    if not compact or position != len(compact):
        raise DurationSyntax(text)
    return total


def seconds_or_none(text: str) -> float | None:
    """:func:`parse_seconds` with every unit, or None when ``text`` is not a duration."""
    try:
        return parse_seconds(text)
    except DurationSyntax:
        return None
