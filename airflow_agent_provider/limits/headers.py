"""
Provider feedback: turn rate-limit response headers into "pause this key for N seconds".

A provider's own counters are the truth; ours are an estimate (other clients may share the API
key). When a provider says a limit is used up (remaining 0) or asks to retry later, every worker
using that key should slow down, not only the one that read the headers, so the result is applied
to the shared store as a pause.

The headers are read by ``llm.provider_headers`` (the one parser, shared with the error classifier);
its docstring lists the formats and the rules. This module only names the limiter's decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_agent_provider.llm.provider_headers import (
    duration_seconds as parse_duration,
    epoch_seconds as parse_time,
    parse_rate_limit_headers,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["parse_duration", "parse_time", "pause_seconds"]


def pause_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """
    How long every user of the key should wait, per the headers; None when they ask for nothing.

    The longest of ``retry-after`` and the resets of the exhausted tiers wins
    (:attr:`~airflow_agent_provider.llm.provider_headers.RateLimitHints.pause_s`). ``now`` (epoch
    seconds) turns absolute reset times into a delay; it defaults to the local clock.
    """
    return parse_rate_limit_headers(headers, now=now).pause_s
