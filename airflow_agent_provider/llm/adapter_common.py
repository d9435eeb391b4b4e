"""
Helpers shared by the OpenAI and Anthropic adapters.

Both adapters have to turn loosely-typed wire data (SDK models or plain dicts, header mappings,
tool arguments the model wrote as JSON text) into the neutral types. The rules for that are the
same for both providers, so they live here once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Key of the marker dict that replaces tool arguments the model sent as malformed JSON.
#: The tool runner sees it and answers the model with an error instead of calling the tool,
#: so one bad generation does not crash the agent.
INVALID_ARGUMENTS_KEY = "__invalid_arguments__"

_RATE_LIMIT_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
_RATE_LIMIT_NAMES = ("retry-after", "retry-after-ms")


def as_plain(obj: Any) -> Any:
    """Return SDK pydantic models as plain dicts, so adapters parse one shape whatever they are given."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", exclude_none=False)
    return obj


def get(obj: Any, key: str, default: Any = None) -> Any:
    """Read ``key`` from a dict (or attribute of an object), treating a missing value as ``default``."""
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        value = obj.get(key, default)
    else:
        value = getattr(obj, key, default)
    return default if value is None else value


def rate_limit_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """
    Keep only the headers the shared rate limiter needs, lower-cased.

    Filtering by an allow-list (not a deny-list) guarantees that no credential-bearing header can
    ever travel on into XCom, trigger events or logs.
    """
    if not headers:
        return {}
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lname = str(name).lower()
        if lname.startswith(_RATE_LIMIT_PREFIXES) or lname in _RATE_LIMIT_NAMES:
            kept[lname] = str(value)
    return kept


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup that works for httpx headers and plain dicts."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return str(value)
    lname = name.lower()
    for key, val in headers.items():
        if str(key).lower() == lname:
            return str(val)
    return None


def parse_tool_arguments(raw: Any) -> dict[str, Any]:
    """
    Turn the arguments of a tool call into a dict.

    OpenAI sends them as JSON text the model wrote, which can be malformed or not an object. Such
    input becomes ``{INVALID_ARGUMENTS_KEY: {"raw": ..., "error": ...}}``: the tool runner answers
    the model with that error, and the model can correct itself in the next round.
    """
    if isinstance(raw, Mapping):
        return dict(raw)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as exc:
        return {
            INVALID_ARGUMENTS_KEY: {"raw": str(raw)[:2000], "error": f"arguments are not valid JSON: {exc}"}
        }
    if not isinstance(value, dict):
        return {
            INVALID_ARGUMENTS_KEY: {
                "raw": str(raw)[:2000],
                "error": f"arguments must be a JSON object, got {type(value).__name__}",
            }
        }
    return value


def arguments_error(arguments: Mapping[str, Any]) -> str | None:
    """The parse error recorded by :func:`parse_tool_arguments`, or None when the arguments are usable."""
    marker = arguments.get(INVALID_ARGUMENTS_KEY) if isinstance(arguments, Mapping) else None
    if isinstance(marker, Mapping):
        return str(marker.get("error") or "invalid arguments")
    return None


def common_call_kwargs(timeout: float | None, extra_headers: Mapping[str, str] | None) -> dict[str, Any]:
    """SDK keyword arguments both providers accept in the same form."""
    kwargs: dict[str, Any] = {}
    if timeout is not None:
        kwargs["timeout"] = timeout
    if extra_headers:
        kwargs["extra_headers"] = dict(extra_headers)
    return kwargs
