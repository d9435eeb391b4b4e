"""
What guards one agent's model calls: limits, budgets, retries, breaker, fallbacks.

``GuardConfig`` is plain JSON-safe data because it travels with the call: the operator builds it on
the worker, and in deferrable mode it crosses to the triggerer inside the trigger's kwargs. It holds
no credentials, only connection ids.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.limits.policy import RateLimitPolicy

if TYPE_CHECKING:
    # Imported where used: this module is loaded at DAG parse time, the resilience engines are not needed then.
    from airflow_agent_provider.resilience.fallback import FallbackTarget


@dataclass(frozen=True)
class RateLimitRule:
    """
    One shared limit and the calls it applies to.

    ``provider``/``model``/``llm_conn_id`` left as None match any value, so ``openai`` limits every
    OpenAI model and ``openai/gpt-5-mini`` only that one; a call takes a permit from every rule that
    matches it, in ``key`` order (a fixed order, so two callers never wait on each other in a cycle).
    """

    key: str
    limits: dict[str, Any]
    provider: str | None = None
    model: str | None = None
    llm_conn_id: str | None = None

    def matches(self, provider: str, model: str, llm_conn_id: str | None) -> bool:
        return (
            (self.provider is None or self.provider == provider)
            and (self.model is None or self.model == model)
            and (self.llm_conn_id is None or self.llm_conn_id == llm_conn_id)
        )

    @property
    def policy(self) -> RateLimitPolicy:
        return RateLimitPolicy.from_mapping(self.limits)


@dataclass(frozen=True)
class GuardConfig:
    """Everything that applies to the model calls of one agent task instance."""

    #: Ledger identity of the calls.
    dag_id: str
    run_id: str
    module: str
    agent: str
    #: Budgets in USD; None means "no limit of this kind" (spend is recorded either way).
    agent_cost_limit: float | None = None
    module_cost_budget: float | None = None
    run_cost_budget: float | None = None
    daily_budget: float | None = None
    monthly_budget: float | None = None
    price_override: dict[str, Any] | None = None
    rate_limits: tuple[RateLimitRule, ...] = ()
    #: Longest wait for a rate-limit permit before the call fails (transient) and Airflow retries.
    rate_limit_timeout_s: float | None = 600.0
    #: Inner retry layer (``CallRetryPolicy`` mapping); the SDKs' own retries are off.
    call_retries: dict[str, Any] = field(default_factory=dict)
    #: ``BreakerConfig`` mapping, or None to call without a circuit breaker.
    breaker: dict[str, Any] | None = field(default_factory=dict)
    fallbacks: tuple[FallbackTarget, ...] = ()
    #: A reservation not settled within this time stops counting (its worker died).
    reservation_ttl_s: float = 900.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuardConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["rate_limits"] = tuple(RateLimitRule(**r) for r in values.get("rate_limits") or ())
        from airflow_agent_provider.resilience.fallback import FallbackTarget

        values["fallbacks"] = tuple(FallbackTarget(**t) for t in values.get("fallbacks") or ())
        return cls(**values)

    def rules_for(self, target: FallbackTarget) -> list[RateLimitRule]:
        rules = [r for r in self.rate_limits if r.matches(target.provider, target.model, target.llm_conn_id)]
        return sorted(rules, key=lambda r: r.key)
