"""
Resilience engines: error classification, in-call retries, shared circuit breakers, fallbacks.

Airflow-free on purpose: the same code runs in a worker, in a triggerer and in plain scripts. The
Airflow edge (the task-level retry policy) is ``airflow_agent_provider.operators.retry_policy``.

The names are imported on first use (PEP 562), not with the package: importing one submodule
(as a DAG file does through the operators) must not import every sibling and what they need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_agent_provider.resilience.breaker import (
        BreakerConfig,
        CircuitBreaker,
        CircuitOpenError,
    )
    from airflow_agent_provider.resilience.classify import (
        ClassifiedError,
        ErrorInfo,
        classify,
        classify_event,
        error_event,
    )
    from airflow_agent_provider.resilience.fallback import (
        FallbackAttempt,
        FallbackTarget,
        acall_with_fallbacks,
        call_with_fallbacks,
    )
    from airflow_agent_provider.resilience.retrying import (
        CallRetryPolicy,
        RetryEvent,
        acall_with_retries,
        call_with_retries,
        compute_backoff,
    )

#: exported name -> the module that defines it, imported on first use
_EXPORTS: dict[str, str] = {
    "BreakerConfig": "airflow_agent_provider.resilience.breaker",
    "CircuitBreaker": "airflow_agent_provider.resilience.breaker",
    "CircuitOpenError": "airflow_agent_provider.resilience.breaker",
    "ClassifiedError": "airflow_agent_provider.resilience.classify",
    "ErrorInfo": "airflow_agent_provider.resilience.classify",
    "classify": "airflow_agent_provider.resilience.classify",
    "classify_event": "airflow_agent_provider.resilience.classify",
    "error_event": "airflow_agent_provider.resilience.classify",
    "FallbackAttempt": "airflow_agent_provider.resilience.fallback",
    "FallbackTarget": "airflow_agent_provider.resilience.fallback",
    "acall_with_fallbacks": "airflow_agent_provider.resilience.fallback",
    "call_with_fallbacks": "airflow_agent_provider.resilience.fallback",
    "CallRetryPolicy": "airflow_agent_provider.resilience.retrying",
    "RetryEvent": "airflow_agent_provider.resilience.retrying",
    "acall_with_retries": "airflow_agent_provider.resilience.retrying",
    "call_with_retries": "airflow_agent_provider.resilience.retrying",
    "compute_backoff": "airflow_agent_provider.resilience.retrying",
}

__all__ = [
    "BreakerConfig",
    "CallRetryPolicy",
    "CircuitBreaker",
    "CircuitOpenError",
    "ClassifiedError",
    "ErrorInfo",
    "FallbackAttempt",
    "FallbackTarget",
    "RetryEvent",
    "acall_with_fallbacks",
    "acall_with_retries",
    "call_with_fallbacks",
    "call_with_retries",
    "classify",
    "classify_event",
    "compute_backoff",
    "error_event",
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
