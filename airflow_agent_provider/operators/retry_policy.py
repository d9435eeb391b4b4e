"""
Airflow's task-level retry decision for agent tasks (the outer retry layer).

Why a retry policy rather than plain ``retries``: Airflow's own retries treat every failure alike. An
agent task that failed with a 401 or a prompt too long for the model would burn all its retries and
their delays for nothing, while one that hit a 429 should wait as long as the provider asked, not a
fixed ``retry_delay``. ``AgentRetryPolicy`` uses the same classifier as the in-call retries and the
breaker (``resilience.classify``): permanent errors fail the task at once; transient ones are retried
after ``max(provider's retry-after, exponential backoff)``; errors the classifier knows nothing about
are left to the task's standard retry behaviour. The number of tries stays the task's ``retries``.

How it is serialized: Airflow 3.3's DAG serializer stores only a ``has_retry_policy`` flag and the
worker re-parses the DAG file to get the live object, so the policy never has to survive JSON in
practice. ``serialize``/``deserialize`` are still implemented (JSON-safe, round-trip exact) as the
``RetryPolicy`` contract asks, for anything that does store policies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy

from airflow_agent_provider.resilience.classify import classify
from airflow_agent_provider.resilience.retrying import compute_backoff, to_seconds

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

#: A provider's retry-after is honoured beyond ``max_delay``, but never beyond this.
MAX_PROVIDER_DELAY_S = 24 * 3600.0


class AgentRetryPolicy(RetryPolicy):
    """
    Fail permanent model errors at once; retry transient ones after the provider's delay.

    :param base_delay: first backoff delay (seconds, ``timedelta`` or ``"30s"``).
    :param max_delay: cap of the computed backoff. It does not cap the provider's own retry-after
        (up to a day): retrying earlier than the provider allows only fails again.
    :param exponential: double the backoff after each try.
    :param jitter: draw the backoff from its upper half, so that tasks failing together spread out.
    """

    def __init__(
        self,
        base_delay: timedelta | float | str = 30.0,
        max_delay: timedelta | float | str = 600.0,
        exponential: bool = True,
        jitter: bool = True,
    ) -> None:
        self.base_delay_s = to_seconds(base_delay, name="base_delay")
        self.max_delay_s = to_seconds(max_delay, name="max_delay")
        self.exponential = bool(exponential)
        self.jitter = bool(jitter)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> AgentRetryPolicy:
        """
        Build from a workflow definition's ``retries`` block. Its ``attempts`` is the task's
        ``retries`` count and is not the policy's business, so it is accepted and ignored here.
        """
        data = dict(data or {})
        data.pop("attempts", None)
        unknown = set(data) - {"base_delay", "max_delay", "exponential", "jitter"}
        if unknown:
            raise ValueError(f"unknown retries setting(s) {sorted(unknown)}")
        return cls(**data)

    def __repr__(self) -> str:
        return (
            f"AgentRetryPolicy(base_delay={self.base_delay_s:g}, max_delay={self.max_delay_s:g}, "
            f"exponential={self.exponential}, jitter={self.jitter})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AgentRetryPolicy) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.serialize().items())))

    def backoff(self, try_number: int) -> float:
        return compute_backoff(
            max(1, try_number),
            base_delay_s=self.base_delay_s,
            max_delay_s=self.max_delay_s,
            exponential=self.exponential,
            jitter=self.jitter,
        )

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Context | None = None,
    ) -> RetryDecision:
        info = classify(exception)
        where = f"HTTP {info.status_code} " if info.status_code else ""
        what = f"{where}{info.error_type}".strip()
        if not info.classified:
            return RetryDecision.default()
        if info.permanent:
            return RetryDecision.fail(reason=f"permanent model error ({info.reason}): {what}")
        backoff = self.backoff(try_number)
        provider_delay = min(info.retry_after_s or 0.0, MAX_PROVIDER_DELAY_S)
        delay = max(backoff, provider_delay)
        source = "provider retry-after" if provider_delay >= backoff and info.retry_after_s else "backoff"
        return RetryDecision.retry(
            delay=timedelta(seconds=delay),
            reason=f"transient model error ({info.reason}): {what}; retry in {delay:.1f}s ({source})",
        )

    def serialize(self) -> dict[str, Any]:
        return {
            "__type": "AgentRetryPolicy",
            "base_delay": self.base_delay_s,
            "max_delay": self.max_delay_s,
            "exponential": self.exponential,
            "jitter": self.jitter,
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> AgentRetryPolicy:
        return cls(
            base_delay=data["base_delay"],
            max_delay=data["max_delay"],
            exponential=data.get("exponential", True),
            jitter=data.get("jitter", True),
        )
