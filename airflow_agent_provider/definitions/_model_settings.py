"""The settings blocks of an agent: task retries, rate limits, call retries, fallbacks, breaker, budget gate."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from airflow_agent_provider.definitions._model_fields import (
    NonEmptyStr,
    StrictModel,
)
from airflow_agent_provider.definitions.durations import Duration, PositiveDuration
from airflow_agent_provider.llm.types import Provider


class RetrySpec(StrictModel):
    """How often and how patiently a failed LLM call is retried."""

    attempts: int = Field(2, ge=0, description="Retries after the first try (0 = no retry).")
    base_delay: Duration = Field(timedelta(seconds=30), description="Delay before the first retry.")
    max_delay: Duration = Field(timedelta(minutes=10), description="Upper bound of any delay.")
    exponential: bool = Field(True, description="Double the delay after every retry.")
    jitter: bool = Field(True, description="Randomise delays so agents do not retry in lock-step.")

    @model_validator(mode="after")
    def _max_not_below_base(self) -> RetrySpec:
        if self.max_delay < self.base_delay:
            raise ValueError(
                f"max_delay ({_fmt(self.max_delay)}) must not be shorter than base_delay ({_fmt(self.base_delay)})"
            )
        return self


class RateLimitSpec(StrictModel):
    """Shared limits for one provider or one provider/model, enforced across all workers."""

    requests_per_minute: int | None = Field(None, gt=0)
    requests_per_hour: int | None = Field(None, gt=0)
    requests_per_day: int | None = Field(None, gt=0)
    tokens_per_minute: int | None = Field(None, gt=0)
    max_concurrent: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _at_least_one(self) -> RateLimitSpec:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError(f"set at least one limit ({', '.join(type(self).model_fields)})")
        return self


class CallRetrySpec(StrictModel):
    """
    Retries *inside* one model call, for transient errors (429, 5xx, overload, timeouts).

    The inner of two layers: it honours the provider's ``retry-after`` within ``max_delay``;
    what it cannot absorb becomes a task failure that Airflow retries per ``retries:``.
    """

    max_attempts: int = Field(3, ge=1, le=20, description="Attempts in total, the first included.")
    base_delay: Duration = timedelta(seconds=1)
    max_delay: Duration = timedelta(seconds=30)
    exponential: bool = True
    jitter: bool = True

    @model_validator(mode="after")
    def _max_not_below_base(self) -> CallRetrySpec:
        if self.max_delay < self.base_delay:
            raise ValueError(
                f"max_delay ({_fmt(self.max_delay)}) must not be shorter than base_delay ({_fmt(self.base_delay)})"
            )
        return self


class FallbackSpec(StrictModel):
    """Another model (or provider) to use while this one's breaker is open or it keeps failing."""

    provider: Provider
    model: NonEmptyStr
    connection: NonEmptyStr | None = Field(None, description="Default: agent_<provider>_default.")


class BreakerSpec(StrictModel):
    """The circuit breaker per provider/model, shared by every worker through the store."""

    enabled: bool = True
    failure_threshold: int = Field(5, ge=1, description="Transient failures within `window` that open it.")
    window: PositiveDuration = timedelta(seconds=60)
    reset_timeout: PositiveDuration = Field(
        timedelta(seconds=30), description="Open time before trial calls."
    )
    half_open_max_calls: int = Field(1, ge=1)


class BudgetGateSpec(StrictModel):
    """
    A spend check in front of a module or the whole workflow.

    ``scope: day`` with ``max_spend: 20`` means "do not start while this workflow's spend today
    (settled and reserved) is at or above 20 USD". ``wait: false`` checks once and skips what is
    behind the gate; ``wait: true`` waits (rescheduling, no worker slot held) until ``timeout``.
    """

    scope: Literal["run", "day", "month"] = "day"
    max_spend: float = Field(gt=0, description="USD.")
    wait: bool = False
    timeout: PositiveDuration = timedelta(hours=1)
    poke_interval: PositiveDuration = timedelta(minutes=5)


def _fmt(value: timedelta) -> str:
    seconds = value.total_seconds()
    return f"{seconds:g}s"
