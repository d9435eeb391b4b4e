"""
Multi-tier rate limits shared by every worker and triggerer (engine side, Airflow-free).

The names are imported on first use (PEP 562), not with the package: importing one submodule
(as a DAG file does through the operators) must not import every sibling and what they need.
The ``TYPE_CHECKING`` imports below are the one list of the public names (``_lazy.attach``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_agent_provider import _lazy

if TYPE_CHECKING:
    from airflow_agent_provider.limits.headers import (
        parse_duration as parse_duration,
        parse_time as parse_time,
        pause_seconds as pause_seconds,
    )
    from airflow_agent_provider.limits.limiter import (
        Permit as Permit,
        RateLimiter as RateLimiter,
        RateLimitImpossible as RateLimitImpossible,
        RateLimitTimeout as RateLimitTimeout,
        limit_key as limit_key,
    )
    from airflow_agent_provider.limits.policy import (
        RateLimitPolicy as RateLimitPolicy,
    )

__getattr__, __dir__, __all__ = _lazy.attach(__name__, __file__)
