"""
Provider feedback: turn rate-limit response headers into "pause this key for N seconds".

A provider's own counters are the truth; ours are an estimate (other clients may share the API
key). When a provider says a limit is used up (remaining 0) or asks to retry later, every worker
using that key should slow down, not only the one that read the headers, so the result is applied
to the shared store as a pause.

Formats handled (header names lower-cased, as in ``LLMResponse.rate_limit_headers``):

* ``retry-after``: seconds or an HTTP date; ``retry-after-ms``: milliseconds;
* OpenAI ``x-ratelimit-remaining-{requests,tokens}`` with ``x-ratelimit-reset-{requests,tokens}``
  as Go-style durations (``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``);
* Anthropic ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-remaining`` with
  ``...-reset`` as RFC 3339 times.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}

_OPENAI = ("requests", "tokens")
_ANTHROPIC = ("requests", "tokens", "input-tokens", "output-tokens")


def parse_duration(text: str) -> float | None:
    """``6m0s`` -> 360.0, ``20ms`` -> 0.02, ``1.5`` -> 1.5; None when unreadable."""
    text = text.strip().lower()
    if not text:
        return None
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    return total if pos == len(text) else None


def parse_time(text: str) -> float | None:
    """RFC 3339 (``2026-01-01T00:00:30Z``) or HTTP date -> epoch seconds; None when unreadable."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _retry_after(value: str, now: float) -> float | None:
    seconds = parse_duration(value) if re.fullmatch(r"\s*\d+(\.\d+)?\s*", value) else None
    if seconds is not None:
        return seconds
    moment = parse_time(value)
    return None if moment is None else max(moment - now, 0.0)


def _exhausted(value: str | None) -> bool:
    if value is None:
        return False
    try:
        return float(value) <= 0
    except ValueError:
        return False


def pause_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """
    How long every user of the key should wait, per the headers; None when they ask for nothing.

    ``now`` (epoch seconds) turns absolute reset times into a delay; it defaults to the local clock.
    The longest of all the delays the headers imply wins.
    """
    h = {k.lower(): str(v) for k, v in headers.items()}
    now = time.time() if now is None else now
    delays: list[float] = []
    if "retry-after-ms" in h:
        ms = parse_duration(h["retry-after-ms"])
        if ms is not None:
            delays.append(ms / 1000.0)
    if "retry-after" in h:
        seconds = _retry_after(h["retry-after"], now)
        if seconds is not None:
            delays.append(seconds)
    for kind in _OPENAI:
        if _exhausted(h.get(f"x-ratelimit-remaining-{kind}")):
            reset = parse_duration(h.get(f"x-ratelimit-reset-{kind}", ""))
            if reset is not None:
                delays.append(reset)
    for kind in _ANTHROPIC:
        if _exhausted(h.get(f"anthropic-ratelimit-{kind}-remaining")):
            moment = parse_time(h.get(f"anthropic-ratelimit-{kind}-reset", ""))
            if moment is not None:
                delays.append(max(moment - now, 0.0))
    delays = [d for d in delays if d > 0]
    return max(delays) if delays else None
