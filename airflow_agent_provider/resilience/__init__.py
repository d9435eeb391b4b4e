"""Resilience engines: error classification, in-call retries, shared circuit breakers, fallbacks.

Airflow-free on purpose: the same code runs in a worker, in a triggerer and in plain scripts. The
Airflow edge (the task-level retry policy) is ``airflow_agent_provider.operators.retry_policy``.
"""

from __future__ import annotations

from airflow_agent_provider.resilience.breaker import BreakerConfig, CircuitBreaker, CircuitOpenError
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
