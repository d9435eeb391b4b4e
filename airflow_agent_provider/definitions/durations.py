"""
Human-friendly durations for timeouts and retry delays.

Workflow files are written by people, so ``timeout: 2h`` or ``base_delay: 30s`` reads better than a
number of seconds. Both forms are accepted and turned into :class:`datetime.timedelta`; anything
else is rejected with a message that shows the accepted forms, rather than guessed at.

The grammar is the provider's one (``airflow_agent_provider._durations``, also used for retry settings
and provider headers); workflow files use its ``d``, ``h``, ``m`` and ``s`` units.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

from airflow_agent_provider._durations import DurationSyntax, parse_seconds

#: Units a workflow file may use (the shared grammar also knows ms/us/ns, for provider headers).
_UNITS = ("d", "h", "m", "s")

DURATION_FORMS = "a number of seconds or a string like '30s', '5m', '2h', '1d' or '1h30m'"


def parse_duration(value: Any) -> timedelta:
    """
    Turn ``value`` into a non-negative :class:`~datetime.timedelta`.

    Accepts a ``timedelta``, an int or float number of seconds, or a string made of ``<number><unit>``
    parts with units ``d``, ``h``, ``m``, ``s`` in that order, each at most once (``1h30m``). A plain
    numeric string is read as seconds. Booleans are rejected: ``timeout: yes`` is a mistake, not 1s.

    :raises ValueError: with a message that names the accepted forms.
    """
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"expected a duration ({DURATION_FORMS}), got {value!r}")
    elif isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite duration, got {value!r}")
        result = timedelta(seconds=value)
    elif isinstance(value, str):
        result = _parse_string(value)
    else:
        raise ValueError(f"expected a duration ({DURATION_FORMS}), got {type(value).__name__} {value!r}")
    if result < timedelta(0):
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return result


def _parse_string(value: str) -> timedelta:
    try:
        return timedelta(seconds=parse_seconds(value, units=_UNITS))
    except DurationSyntax as exc:
        if exc.order:
            raise ValueError(
                f"invalid duration {value!r}: use each unit once, largest first (d, h, m, s), e.g. '1h30m'"
            ) from None
        raise ValueError(f"invalid duration {value!r}: expected {DURATION_FORMS}") from None


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


def _parse_positive(value: Any) -> timedelta:
    return _positive(parse_duration(value))


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
"""A non-negative duration (retry delays may be zero)."""

PositiveDuration = Annotated[timedelta, BeforeValidator(_parse_positive)]
"""A duration longer than zero (timeouts)."""
