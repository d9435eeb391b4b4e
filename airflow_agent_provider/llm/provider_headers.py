"""
Provider response headers -> typed rate-limit hints: the one parser, for the limiter and the classifier.

Two layers act on the same headers: the rate limiter pauses the shared key for every worker
(``limits.headers.pause_seconds``) and the error classifier says how long a failed call should wait
(``resilience.classify``). They used to parse the headers separately and disagreed on details; this
module is the only reader, and the rules are:

Formats (header names in any case):

* ``retry-after-ms`` (milliseconds) and ``retry-after`` (seconds, or an HTTP date or RFC 3339 time)
  are the *explicit* hint; when both are readable ``retry-after-ms`` wins (same hint, more precise).
* A *tier* is one of the provider's counters: OpenAI ``x-ratelimit-{remaining,reset}-{requests,tokens}``
  and Anthropic ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{remaining,reset}``.
  A reset is a duration in the provider's one grammar (``_durations``: ``6m0s``, ``20ms``, ``1h2m3.5s``,
  ``1d``, a bare number of seconds) or an absolute time (RFC 3339 or HTTP date; without a zone, UTC).
* A tier is *exhausted* when its ``remaining`` is a number ``<= 0``.
* Times in the past mean "now": every delay is ``>= 0``; unreadable values are ignored, never guessed.

Decisions (see :class:`RateLimitHints`):

* :attr:`~RateLimitHints.pause_s`: the longest of the explicit hint and the resets of the exhausted
  tiers, when it is above zero. Retrying before the longest of them only fails again.
* :meth:`~RateLimitHints.retry_after_s`: for a rate-limited (429) response, :attr:`pause_s`, else the
  soonest reset of any tier (a 429 that marks no tier exhausted is retried when the first one resets);
  for any other response only the explicit hint counts (resets say nothing about a 503).

Standard library only: imported at DAG parse time and in the triggerer.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from airflow_agent_provider._durations import seconds_or_none

#: ``(vendor, tier, remaining header, reset header)`` for every tier the two APIs report.
_TIERS: tuple[tuple[str, str, str, str], ...] = (
    *(("openai", t, f"x-ratelimit-remaining-{t}", f"x-ratelimit-reset-{t}") for t in ("requests", "tokens")),
    *(
        ("anthropic", t, f"anthropic-ratelimit-{t}-remaining", f"anthropic-ratelimit-{t}-reset")
        for t in ("requests", "tokens", "input-tokens", "output-tokens")
    ),
)


def duration_seconds(text: str) -> float | None:
    """``6m0s`` -> 360.0, ``20ms`` -> 0.02, ``1.5`` -> 1.5, ``1d`` -> 86400.0; None when unreadable."""
    return seconds_or_none(text)


def epoch_seconds(text: str) -> float | None:
    """RFC 3339 (``2026-01-01T00:00:30Z``) or HTTP date -> epoch seconds (no zone: UTC); None when unreadable."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _delay(value: float | None) -> float | None:
    """A usable delay: finite and not negative (the past is "now"); None for NaN or infinity."""
    if value is None or not math.isfinite(value):
        return None
    return max(0.0, value)


def _until(text: str, now: float) -> float | None:
    """Seconds until ``text``, read as a duration first and else as an absolute time."""
    seconds = duration_seconds(text)
    if seconds is not None:
        return _delay(seconds)
    moment = epoch_seconds(text)
    return None if moment is None else _delay(moment - now)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class TierHint:
    """One provider counter as the headers report it."""

    vendor: str
    #: ``requests``, ``tokens``, ``input-tokens`` or ``output-tokens``.
    tier: str
    remaining: float | None
    #: Seconds until the counter resets (``>= 0``), when the headers say.
    reset_s: float | None

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


@dataclass(frozen=True)
class RateLimitHints:
    """What one response's headers say about waiting (see the module docstring for the rules)."""

    #: The explicit hint (``retry-after-ms``/``retry-after``) in seconds, ``>= 0``.
    explicit_s: float | None = None
    tiers: tuple[TierHint, ...] = ()

    @property
    def exhausted(self) -> tuple[TierHint, ...]:
        return tuple(t for t in self.tiers if t.exhausted)

    @property
    def pause_s(self) -> float | None:
        """How long every user of the key should wait: the longest hint above zero, or None."""
        delays = [self.explicit_s, *(t.reset_s for t in self.exhausted)]
        positive = [d for d in delays if d is not None and d > 0]
        return max(positive) if positive else None

    def retry_after_s(self, *, rate_limited: bool) -> float | None:
        """How long a failed call should wait before its retry, or None when the headers do not say."""
        if not rate_limited:
            return self.explicit_s
        pause = self.pause_s
        if pause is not None:
            return pause
        if self.explicit_s is not None:  # an explicit "0": retry now
            return self.explicit_s
        resets = [t.reset_s for t in self.tiers if t.reset_s is not None]
        return min(resets) if resets else None


def _explicit(get: Mapping[str, str], now: float) -> float | None:
    millis = _number(get.get("retry-after-ms"))
    if millis is not None:
        return _delay(millis / 1000.0)
    value = get.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return _delay(seconds)
    moment = epoch_seconds(value)
    return None if moment is None else _delay(moment - now)


def parse_rate_limit_headers(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> RateLimitHints:
    """
    The hints in ``headers`` (any mapping, e.g. ``httpx.Headers`` or a plain dict; names in any case).

    ``now`` (epoch seconds) turns absolute times into delays; it defaults to the local clock.
    """
    if not headers:
        return RateLimitHints()
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    now = time.time() if now is None else now
    tiers = []
    for vendor, tier, remaining_name, reset_name in _TIERS:
        remaining, reset = lower.get(remaining_name), lower.get(reset_name)
        if remaining is None and reset is None:
            continue
        tiers.append(
            TierHint(vendor, tier, _number(remaining), None if reset is None else _until(reset, now))
        )
    return RateLimitHints(_explicit(lower, now), tuple(tiers))
