"""The version check every stored result record passes before it is validated (agent and workflow results)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def versioned_record(value: Any, what: str, readable: tuple[int, ...]) -> dict[str, Any] | None:
    """
    ``value`` (already decoded from JSON) as a dict of a readable version; None for no value.

    A record without ``version`` is version 1 (written before records were versioned).

    :raises ValueError: not a JSON object, or a version this code cannot read.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} is a JSON object, not {type(value).__name__}")
    version = value.get("version", 1)
    if version not in readable:
        noun = what.split(" ", 1)[1]  # "an agent result" -> "agent result"
        raise ValueError(f"{noun} of version {version!r} cannot be read (readable: {readable})")
    return dict(value)
