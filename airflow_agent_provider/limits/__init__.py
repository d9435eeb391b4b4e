"""
Multi-tier rate limits shared by every worker and triggerer (engine side, Airflow-free).

The names are imported on first use (PEP 562), not with the package: importing one submodule
(as a DAG file does through the operators) must not import every sibling and what they need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_agent_provider.limits.headers import (
        parse_duration,
        parse_time,
        pause_seconds,
    )
    from airflow_agent_provider.limits.limiter import (
        Permit,
        RateLimiter,
        RateLimitImpossible,
        RateLimitTimeout,
        limit_key,
    )
    from airflow_agent_provider.limits.policy import (
        RateLimitPolicy,
    )

#: exported name -> the module that defines it, imported on first use
_EXPORTS: dict[str, str] = {
    "pause_seconds": "airflow_agent_provider.limits.headers",
    "parse_duration": "airflow_agent_provider.limits.headers",
    "parse_time": "airflow_agent_provider.limits.headers",
    "Permit": "airflow_agent_provider.limits.limiter",
    "RateLimiter": "airflow_agent_provider.limits.limiter",
    "RateLimitImpossible": "airflow_agent_provider.limits.limiter",
    "RateLimitTimeout": "airflow_agent_provider.limits.limiter",
    "limit_key": "airflow_agent_provider.limits.limiter",
    "RateLimitPolicy": "airflow_agent_provider.limits.policy",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
