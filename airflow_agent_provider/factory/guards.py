"""
The typed guard of every agent, built from the definition models once per DAG build.

This is the one place where the definition's names (``cost_budget``, ``call_retries.base_delay``,
``circuit_breaker.window``, ``price``, ``fallbacks[].connection``) become the engines' types
(``BudgetLimits``, ``CallRetryPolicy``, ``BreakerConfig``, ``PriceOverride``, ``FallbackTarget``),
inside one :class:`~airflow_agent_provider.guard.config.GuardConfig`. What every agent of a
workflow shares (the rate-limit rules, the breaker, each module's budgets) is built once per
workflow, not once per agent: a 500-agent workflow is parsed at every task start.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from airflow_agent_provider.cost.budget import BudgetLimits
from airflow_agent_provider.definitions.models import (
    BreakerSpec,
    CallRetrySpec,
    FallbackSpec,
    default_connection_id,
)
from airflow_agent_provider.guard.config import GuardConfig, RateLimitRule
from airflow_agent_provider.resilience.breaker_config import BreakerConfig
from airflow_agent_provider.resilience.retrying import CallRetryPolicy
from airflow_agent_provider.resilience.targets import FallbackTarget

if TYPE_CHECKING:
    from airflow_agent_provider.definitions import AgentSpec, Workflow


def rate_limit_rules(workflow: Workflow) -> tuple[RateLimitRule, ...]:
    """The workflow's ``rate_limits`` as limiter rules; matching happens per call (fallbacks too)."""
    rules = []
    for key, spec in workflow.rate_limits.items():
        provider, _, model = key.partition("/")
        limits = spec.model_dump(exclude_none=True)
        rules.append(RateLimitRule(key=key, limits=limits, provider=provider, model=model or None))
    return tuple(rules)


def breaker_config(spec: BreakerSpec) -> BreakerConfig | None:
    """The workflow's ``circuit_breaker`` (None when disabled)."""
    if not spec.enabled:
        return None
    return BreakerConfig(
        failure_threshold=spec.failure_threshold,
        window_s=spec.window.total_seconds(),
        reset_timeout_s=spec.reset_timeout.total_seconds(),
        half_open_max_calls=spec.half_open_max_calls,
    )


def call_retry_policy(spec: CallRetrySpec) -> CallRetryPolicy:
    """An agent's ``call_retries``."""
    return CallRetryPolicy(
        max_attempts=spec.max_attempts,
        base_delay_s=spec.base_delay.total_seconds(),
        max_delay_s=spec.max_delay.total_seconds(),
        exponential=spec.exponential,
        jitter=spec.jitter,
    )


def fallback_target(spec: FallbackSpec) -> FallbackTarget:
    """One of an agent's ``fallbacks`` (its connection defaults to the provider's)."""
    return FallbackTarget(spec.provider, spec.model, spec.connection or default_connection_id(spec.provider))


@dataclass
class WorkflowGuards:
    """The guards of one workflow's agents; the shared parts are built once, in ``__post_init__``."""

    workflow: Workflow
    rate_limits: tuple[RateLimitRule, ...] = field(init=False)
    breaker: BreakerConfig | None = field(init=False)
    budgets: dict[str, BudgetLimits] = field(init=False)

    def __post_init__(self) -> None:
        workflow = self.workflow
        self.rate_limits = rate_limit_rules(workflow)
        self.breaker = breaker_config(workflow.circuit_breaker)
        self.budgets = {
            name: BudgetLimits(
                module_cost_budget=module.cost_budget,
                run_cost_budget=workflow.cost_budget,
                daily_budget=workflow.daily_budget,
                monthly_budget=workflow.monthly_budget,
            )
            for name, module in workflow.modules.items()
        }

    def for_agent(self, module: str, agent: AgentSpec) -> GuardConfig:
        return GuardConfig(
            module=module,
            agent=agent.name,
            budgets=replace(self.budgets[module], agent_cost_limit=agent.cost_limit),
            price_override=agent.price,
            rate_limits=self.rate_limits,
            call_retries=call_retry_policy(agent.call_retries),
            breaker=self.breaker,
            fallbacks=tuple(fallback_target(f) for f in agent.fallbacks),
        )


__all__ = ["WorkflowGuards", "breaker_config", "call_retry_policy", "fallback_target", "rate_limit_rules"]
