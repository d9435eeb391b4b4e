"""
What guards one agent's model calls: limits, budgets, retries, breaker, fallbacks — one typed record.

``GuardConfig`` is built once per agent when the DAG is built (by the factory from the definition
models, or by :meth:`GuardConfig.from_arguments` from an operator's keyword arguments), bound to a
run with :meth:`GuardConfig.for_run` when the agent runs, and handed as that object to the guarded
pipeline on a worker and to the triggers. It becomes JSON only at the trigger boundary
(:meth:`to_dict`, which writes only what differs from the defaults, and :meth:`from_dict`). It holds
no credentials, only connection ids.

Every part is the engine's own type (``BudgetLimits``, ``PriceOverride``, ``RateLimitPolicy``,
``CallRetryPolicy``, ``BreakerConfig``, ``FallbackTarget``), so adding a setting means adding it to
that type and to the code that reads it; the JSON form follows from the field names.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_agent_provider.cost.budget import BudgetLimits
from airflow_agent_provider.cost.pricing import PriceOverride
from airflow_agent_provider.limits.policy import RateLimitPolicy
from airflow_agent_provider.resilience.breaker_config import BreakerConfig
from airflow_agent_provider.resilience.retrying import CallRetryPolicy
from airflow_agent_provider.resilience.targets import FallbackTarget

#: Names of the shared budgets an operator's ``budget`` argument may set (``BudgetLimits`` fields
#: other than the agent's own ``cost_limit``).
BUDGET_KEYS = frozenset(f.name for f in dataclasses.fields(BudgetLimits)) - {"agent_cost_limit"}


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@functools.lru_cache(maxsize=1024)
def _policy(text: str) -> RateLimitPolicy:
    return RateLimitPolicy.from_mapping(json.loads(text))


def parse_policy(limits: Mapping[str, Any] | str) -> RateLimitPolicy:
    """A rate-limit policy, parsed once per distinct text per process (500 agents share a handful)."""
    return _policy(limits if isinstance(limits, str) else _text(dict(limits)))


@dataclass(frozen=True)
class RateLimitRule:
    """
    One shared limit and the calls it applies to.

    ``provider``/``model``/``llm_conn_id`` left as None match any value, so ``openai`` limits every
    OpenAI model and ``openai/gpt-5-mini`` only that one; a call takes a permit from every rule that
    matches it, in ``key`` order (a fixed order, so two callers never wait on each other in a cycle).
    ``limits`` is the rule as written (what the run record shows); ``policy`` is it parsed, once,
    when the rule is made: a typo in a limit fails then, not on the first call.
    """

    key: str
    limits: Mapping[str, Any]
    provider: str | None = None
    model: str | None = None
    llm_conn_id: str | None = None
    policy: RateLimitPolicy = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy", parse_policy(self.limits))

    def matches(self, provider: str, model: str, llm_conn_id: str | None) -> bool:
        return (
            (self.provider is None or self.provider == provider)
            and (self.model is None or self.model == model)
            and (self.llm_conn_id is None or self.llm_conn_id == llm_conn_id)
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "limits": dict(self.limits)}
        data.update(
            {
                name: value
                for name in ("provider", "model", "llm_conn_id")
                if (value := getattr(self, name)) is not None
            }
        )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RateLimitRule:
        return cls(**data)


@functools.lru_cache(maxsize=256)
def _rules(text: str) -> tuple[RateLimitRule, ...]:
    return tuple(RateLimitRule.from_dict(rule) for rule in json.loads(text))


def parse_rules(rules: Sequence[Mapping[str, Any]] | None) -> tuple[RateLimitRule, ...]:
    """Rules given as mappings (an operator argument), parsed once per distinct list per process."""
    return _rules(_text([dict(rule) for rule in rules])) if rules else ()


@functools.lru_cache(maxsize=256)
def _connection_rule(conn_id: str, text: str) -> RateLimitRule:
    policy = RateLimitPolicy.from_mapping(json.loads(text))
    limits = {k: v for k, v in dataclasses.asdict(policy).items() if v is not None}
    return RateLimitRule(key=f"conn:{conn_id}", limits=limits, llm_conn_id=conn_id)


def connection_rule(conn_id: str, extras: Mapping[str, Any] | None) -> RateLimitRule | None:
    """The rule of a connection's ``rate_limits`` extra (a mapping or JSON text), keyed by the connection."""
    limits = (extras or {}).get("rate_limits")
    if not limits:
        return None
    return _connection_rule(conn_id, limits if isinstance(limits, str) else _text(dict(limits)))


@functools.lru_cache(maxsize=256)
def _price(text: str) -> PriceOverride:
    return PriceOverride.from_mapping(json.loads(text))


def breaker_setting(value: bool | Mapping[str, Any] | BreakerConfig | None) -> BreakerConfig | None:
    """An operator's ``circuit_breaker`` argument: True (defaults), False/None (off), or settings."""
    if value is None or value is False:
        return None
    if value is True:
        return BreakerConfig()
    if isinstance(value, BreakerConfig):
        return value
    return BreakerConfig(**value)


def _non_default(obj: Any) -> dict[str, Any]:
    """The fields of a flat dataclass that differ from their defaults."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        out[f.name] = value
    return out


@dataclass(frozen=True)
class GuardConfig:
    """
    Everything that applies to the model calls of one agent (bound to one run by :meth:`for_run`).

    ``breaker`` None means calls go without a circuit breaker; ``rate_limit_timeout_s`` is the
    longest wait for a rate-limit permit before the call fails (transient) and Airflow retries;
    ``reservation_ttl_s`` is how long an unsettled budget reservation counts (its worker died).
    """

    #: Ledger identity of the calls: run (filled in by :meth:`for_run`), module and agent.
    dag_id: str = ""
    run_id: str = ""
    module: str = "-"
    agent: str = "agent"
    budgets: BudgetLimits = BudgetLimits()
    price_override: PriceOverride | None = None
    rate_limits: tuple[RateLimitRule, ...] = ()
    rate_limit_timeout_s: float | None = 600.0
    call_retries: CallRetryPolicy = CallRetryPolicy()
    breaker: BreakerConfig | None = BreakerConfig()
    fallbacks: tuple[FallbackTarget, ...] = ()
    reservation_ttl_s: float = 900.0

    @classmethod
    def from_arguments(
        cls,
        *,
        module: str = "-",
        agent: str = "agent",
        cost_limit: float | None = None,
        budget: Mapping[str, float | None] | None = None,
        price_override: Mapping[str, Any] | None = None,
        rate_limits: Sequence[Mapping[str, Any]] | None = None,
        rate_limit_timeout: float | None = 600.0,
        call_retries: Mapping[str, Any] | None = None,
        circuit_breaker: bool | Mapping[str, Any] | None = True,
        fallbacks: Sequence[Mapping[str, Any]] | None = None,
    ) -> GuardConfig:
        """
        Build from an operator's keyword arguments (mappings, as a hand-written DAG gives them).

        Every mapping is checked here, so a bad one is a DAG import error; rules and prices are
        parsed once per distinct text. The factory does not come through here: it builds the
        typed parts from the definition models directly.
        """
        values = {k: v for k, v in (budget or {}).items() if v is not None}
        unknown = set(values) - BUDGET_KEYS
        if unknown:
            raise ValueError(f"unknown budget key(s) {sorted(unknown)}")
        return cls(
            module=module,
            agent=agent,
            budgets=BudgetLimits(agent_cost_limit=cost_limit, **values),
            price_override=_price(_text(dict(price_override))) if price_override else None,
            rate_limits=parse_rules(rate_limits),
            rate_limit_timeout_s=rate_limit_timeout,
            call_retries=CallRetryPolicy.from_mapping(call_retries) if call_retries else CallRetryPolicy(),
            breaker=breaker_setting(circuit_breaker),
            fallbacks=tuple(FallbackTarget(**f) for f in fallbacks or ()),
        )

    def for_run(
        self,
        *,
        dag_id: str,
        run_id: str,
        llm_conn_id: str | None = None,
        conn_extras: Mapping[str, Any] | None = None,
    ) -> GuardConfig:
        """This configuration for one run, plus the agent connection's own ``rate_limits`` extra."""
        rule = connection_rule(llm_conn_id, conn_extras) if llm_conn_id else None
        rules = self.rate_limits if rule is None or rule in self.rate_limits else (*self.rate_limits, rule)
        return replace(self, dag_id=dag_id, run_id=run_id, rate_limits=rules)

    def rules_for(self, target: FallbackTarget) -> list[RateLimitRule]:
        rules = [r for r in self.rate_limits if r.matches(target.provider, target.model, target.llm_conn_id)]
        return sorted(rules, key=lambda r: r.key)

    # -- the trigger boundary -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, and only what differs from the defaults (trigger kwargs are stored per task)."""
        data = _non_default(self)
        for name in ("budgets", "call_retries"):
            if name in data:
                data[name] = _non_default(data[name])
        if data.get("breaker") is not None:
            data["breaker"] = _non_default(data["breaker"])
        if data.get("price_override") is not None:
            data["price_override"] = data["price_override"].model_dump(exclude_defaults=True)
        if "rate_limits" in data:
            data["rate_limits"] = [rule.to_dict() for rule in self.rate_limits]
        if "fallbacks" in data:
            data["fallbacks"] = [_non_default(target) for target in self.fallbacks]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuardConfig:
        """The inverse of :meth:`to_dict` (unknown keys are an error: the two sides share this class)."""
        values = dict(data)
        if "budgets" in values:
            values["budgets"] = BudgetLimits(**values["budgets"])
        if "call_retries" in values:
            values["call_retries"] = CallRetryPolicy(**values["call_retries"])
        if values.get("breaker") is not None:
            values["breaker"] = BreakerConfig(**values["breaker"])
        if values.get("price_override") is not None:
            values["price_override"] = PriceOverride.model_validate(values["price_override"])
        if "rate_limits" in values:
            values["rate_limits"] = tuple(RateLimitRule.from_dict(r) for r in values["rate_limits"])
        if "fallbacks" in values:
            values["fallbacks"] = tuple(FallbackTarget(**t) for t in values["fallbacks"])
        return cls(**values)


__all__ = [
    "BUDGET_KEYS",
    "GuardConfig",
    "RateLimitRule",
    "breaker_setting",
    "connection_rule",
    "parse_policy",
    "parse_rules",
]
