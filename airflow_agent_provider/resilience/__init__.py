"""
Resilience engines: error classification, in-call retries, shared circuit breakers, fallbacks.

Airflow-free on purpose: the same code runs in a worker, in a triggerer and in plain scripts. The
Airflow edge (the task-level retry policy) is ``airflow_agent_provider.operators.retry_policy``.

The names are imported on first use (PEP 562), not with the package: importing one submodule
(as a DAG file does through the operators) must not import every sibling and what they need.
The ``TYPE_CHECKING`` imports below are the one list of the public names (``_lazy.attach``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_agent_provider import _lazy

if TYPE_CHECKING:
    from airflow_agent_provider.resilience.breaker import (
        BreakerConfig as BreakerConfig,
        CircuitBreaker as CircuitBreaker,
        CircuitOpenError as CircuitOpenError,
    )
    from airflow_agent_provider.resilience.classify import (
        ClassifiedError as ClassifiedError,
        ErrorInfo as ErrorInfo,
        classify as classify,
        classify_event as classify_event,
        error_event as error_event,
    )
    from airflow_agent_provider.resilience.fallback import (
        FallbackAttempt as FallbackAttempt,
        FallbackTarget as FallbackTarget,
        acall_with_fallbacks as acall_with_fallbacks,
        call_with_fallbacks as call_with_fallbacks,
    )
    from airflow_agent_provider.resilience.retrying import (
        CallRetryPolicy as CallRetryPolicy,
        RetryEvent as RetryEvent,
        acall_with_retries as acall_with_retries,
        call_with_retries as call_with_retries,
        compute_backoff as compute_backoff,
    )

__getattr__, __dir__, __all__ = _lazy.attach(__name__, __file__)
