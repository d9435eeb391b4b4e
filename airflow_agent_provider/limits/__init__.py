"""Multi-tier rate limits shared by every worker and triggerer (engine side, Airflow-free)."""

from __future__ import annotations

from airflow_agent_provider.limits.headers import pause_seconds, parse_duration, parse_time
from airflow_agent_provider.limits.limiter import (
    Permit,
    RateLimiter,
    RateLimitImpossible,
    RateLimitTimeout,
    limit_key,
)
from airflow_agent_provider.limits.policy import RateLimitPolicy

__all__ = [
    "Permit",
    "RateLimitImpossible",
    "RateLimitPolicy",
    "RateLimitTimeout",
    "RateLimiter",
    "limit_key",
    "parse_duration",
    "parse_time",
    "pause_seconds",
]
