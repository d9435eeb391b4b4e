"""
Input checks for the Operations API: every path and query value is bounded and whitelisted.

Why whitelists rather than escaping: the app's inputs come from any signed-in Airflow user (and
are checked only after authentication and authorization, so an outsider never reaches them). Values only ever become store keys, never file paths, but refusing ``/``, ``..`` and
control characters up front keeps a scope key from being confused with another one and keeps
error messages (which echo the value) harmless.
"""

from __future__ import annotations

import re
from datetime import date

#: Airflow's own rule for DAG ids (``airflow.sdk.definitions._internal.node.KEY_REGEX``, 250 chars).
DAG_ID_RE = re.compile(r"[\w.-]{1,250}")
#: Airflow's default ``[scheduler] allowed_run_id_pattern`` (which covers generated run ids).
RUN_ID_RE = re.compile(r"[A-Za-z0-9_.~:+-]{1,250}")
#: Rate-limit and breaker keys: ``openai``, ``openai/gpt-5-mini``, ``fireworks/accounts/x/models/y``.
KEY_SEGMENT_RE = re.compile(r"[A-Za-z0-9_.:@+=-]{1,100}")
KEY_MAX_LENGTH = 200
DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
MONTH_RE = re.compile(r"\d{4}-\d{2}")


class InvalidParam(ValueError):
    """A request value that fails its check; the API answers 422 with this message."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"invalid {name}: {message}")


def _shown(value: str) -> str:
    """The value as echoed in an error: printable and short."""
    text = "".join(ch if ch.isprintable() else "?" for ch in value[:60])
    return repr(text + ("..." if len(value) > 60 else ""))


def _dots(name: str, value: str) -> None:
    if value in (".", ".."):
        raise InvalidParam(name, f"{_shown(value)} is not allowed")


def dag_id(value: str) -> str:
    """A DAG id: letters, digits, ``_ . -``, at most 250 characters."""
    _dots("dag_id", value)
    if not DAG_ID_RE.fullmatch(value):
        raise InvalidParam("dag_id", f"{_shown(value)} must be 1-250 letters, digits, '_', '.' or '-'")
    return value


def run_id(value: str) -> str:
    """A run id: letters, digits and ``_ . ~ : + -``, at most 250 characters."""
    _dots("run_id", value)
    if not RUN_ID_RE.fullmatch(value):
        raise InvalidParam("run_id", f"{_shown(value)} must be 1-250 letters, digits or '_.~:+-'")
    return value


def limit_key(value: str, name: str = "key") -> str:
    """A limit or breaker key: ``/``-separated segments, none of them ``.`` or ``..``, at most 200 chars."""
    if not value or len(value) > KEY_MAX_LENGTH:
        raise InvalidParam(name, f"must be 1-{KEY_MAX_LENGTH} characters")
    for part in value.split("/"):
        if part in (".", "..") or not KEY_SEGMENT_RE.fullmatch(part):
            raise InvalidParam(
                name,
                f"{_shown(value)} must be '/'-separated segments of letters, digits or '_.:@+=-' (no '.' or '..')",
            )
    return value


def day(value: str) -> str:
    """A UTC date ``YYYY-MM-DD``."""
    if not DAY_RE.fullmatch(value):
        raise InvalidParam("day", f"{_shown(value)} must be YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise InvalidParam("day", f"{_shown(value)} is not a date") from None
    return value


def month(value: str) -> str:
    """A UTC month ``YYYY-MM``."""
    if not MONTH_RE.fullmatch(value) or not 1 <= int(value[5:]) <= 12:
        raise InvalidParam("month", f"{_shown(value)} must be YYYY-MM")
    return value
