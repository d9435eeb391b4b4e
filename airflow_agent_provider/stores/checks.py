"""
The argument contract of the public store methods, written once for every backend.

Why here and not in each backend: the SQLite and the Redis store used to check their arguments
each in their own way, and the two had drifted (Redis refused negative tokens, SQLite stored them).
Every public method of the ``*_api.py`` front classes now runs these checks and only then hands the
values to a backend, so a bad argument is refused before any backend sees it, with the same
exception and the same message on every store.

The rules: a wrong type raises ``TypeError``, a value of the right type outside its range raises
``ValueError``. ``bool`` is never accepted as a number (``True`` tokens is a bug, not 1). Numbers
that reach a store must be finite: NaN compares false with everything, so a NaN limit would never
refuse and a NaN amount would never count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _kind(value: object) -> str:
    return type(value).__name__


def text(name: str, value: object) -> str:
    """``value`` when it is a non-empty string (keys, ids, scopes)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {_kind(value)}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def optional_text(name: str, value: object) -> str | None:
    """``value`` when it is None or a non-empty string."""
    return None if value is None else text(name, value)


def integer(name: str, value: object) -> int:
    """``value`` when it is an ``int`` (never a ``bool``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {_kind(value)}")
    return value


def whole(name: str, value: object, *, minimum: int) -> int:
    """``value`` when it is an ``int`` (never a ``bool``) of at least ``minimum``."""
    result = integer(name, value)
    if result < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {result}")
    return result


def optional_whole(name: str, value: object, *, minimum: int) -> int | None:
    """``value`` when it is None or an ``int`` of at least ``minimum``."""
    return None if value is None else whole(name, value, minimum=minimum)


def number(name: str, value: object) -> float:
    """``value`` as a float when it is a finite real number (``int`` or ``float``, never ``bool``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {_kind(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return result


def optional_number(name: str, value: object) -> float | None:
    """``value`` as a float when it is None or a finite real number."""
    return None if value is None else number(name, value)


def at_least(name: str, value: object, minimum: float) -> float:
    """A finite number of at least ``minimum``."""
    result = number(name, value)
    if result < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}")
    return result


def positive(name: str, value: object) -> float:
    """A finite number above 0."""
    result = number(name, value)
    if not result > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return result


def limit(name: str, value: object) -> float:
    """A budget limit: a number of at least 0, or ``math.inf`` (tracked, never refused); never NaN."""
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return value
    return at_least(name, value, 0)


def flag(name: str, value: object) -> bool:
    """``value`` when it is a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {_kind(value)}")
    return value


def sequence(name: str, value: object) -> Sequence[object]:
    """``value`` when it is a list or tuple (a string is a sequence too, but never the one meant)."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list or tuple, got {_kind(value)}")
    return value


def instance(name: str, value: object, cls: type[object]) -> None:
    """Raise ``TypeError`` unless ``value`` is a ``cls``."""
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be a {cls.__name__}, got {_kind(value)}")


def distinct(name: str, values: Sequence[str]) -> None:
    """Raise ``ValueError`` when a string occurs twice (a scope counted twice would be charged twice)."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{name} lists {value!r} twice")
        seen.add(value)
