"""
An agent's static settings as one JSON-safe record, and where its execution mode comes from.

``AgentConfig`` is what the operator knows when the DAG is built (templates not yet rendered). It
crosses to the triggerer in two ways: as ``start_trigger_args.trigger_kwargs`` of a triggerer-only
agent (serialized with the DAG), and inside a deferral. It holds connection ids, never a key.

Checking it is cheap and cached: a DAG of 500 agents shares a handful of distinct rate-limit
rules and price overrides, so each distinct one is parsed once per process
(:func:`check_rate_limits`, :func:`check_price_override`, :func:`check_output_schema`; the last
imports ``jsonschema`` only when an agent has a schema).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from airflow_agent_provider.guard.config import GuardConfig, RateLimitRule

Execution = Literal["auto", "worker", "deferred", "triggerer"]
EXECUTION_MODES: tuple[str, ...] = ("auto", "worker", "deferred", "triggerer")
PromptContext = Literal["airflow", "workflow"]
PROMPT_CONTEXTS: tuple[str, ...] = ("airflow", "workflow")
#: The trigger a triggerer-only agent starts with (``start_trigger_args.trigger_cls``).
AGENT_TRIGGER = "airflow_agent_provider.triggers.agent.AgentTrigger"
BUDGET_KEYS = frozenset({"module_cost_budget", "run_cost_budget", "daily_budget", "monthly_budget"})


def resolve_execution(
    execution: str, *, deferrable: bool, has_tools: bool, reads_upstream: bool = False
) -> str:
    """
    The mode an agent runs in: ``worker``, ``deferred`` or ``triggerer``.

    ``auto``: ``deferred`` when ``deferrable`` asks for it, else ``worker`` — a tool-less deferred
    agent starts on a worker and then runs and ends in the triggerer (one worker start); an agent
    with tools defers once per round and runs its tools on the worker. ``triggerer`` (no worker at
    all) is opt-in, not an ``auto`` choice, because in Airflow 3.3 the scheduler hands
    ``start_from_trigger`` tasks to the triggerer without counting them against pools, and the
    triggerer deserializes the whole DAG once per such task (cost growing with the square of the
    fleet): both are trade-offs the workflow author should choose. An explicit mode wins over
    ``deferrable`` (``triggerer`` reads upstream results in the triggerer); ``triggerer`` with tools
    is an error.
    """
    if execution not in EXECUTION_MODES:
        raise ValueError(f"execution must be one of {EXECUTION_MODES}, got {execution!r}")
    if execution == "triggerer" and has_tools:
        raise ValueError(
            "execution='triggerer' cannot run tools (they run on a worker); use execution='deferred' "
            "(the model is awaited in the triggerer, tools run on the worker between rounds) or drop the tools"
        )
    if execution != "auto":
        return execution
    return "deferred" if deferrable else "worker"


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@functools.lru_cache(maxsize=1024)
def _checked_rules(key: str) -> None:
    for rule in json.loads(key):  # a typo in a limit must fail at parse time, not mean "unlimited"
        RateLimitRule(**rule).policy


def check_rate_limits(rules: list[dict[str, Any]]) -> None:
    """Parse each distinct list of rules once per process (ValueError/TypeError on a bad one)."""
    if rules:
        _checked_rules(_key(rules))


@functools.lru_cache(maxsize=1024)
def _checked_price(key: str) -> None:
    from airflow_agent_provider.cost.pricing import PriceOverride

    PriceOverride.from_mapping(json.loads(key))


def check_price_override(price: Mapping[str, Any] | None) -> None:
    """Parse each distinct price override once per process (a bad one fails at DAG parse)."""
    if price:
        _checked_price(_key(dict(price)))


@functools.lru_cache(maxsize=256)
def _checked_schema(key: str) -> None:
    import jsonschema

    schema = json.loads(key)
    jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)


def check_output_schema(schema: Mapping[str, Any] | None) -> None:
    """Check a JSON schema once per distinct schema (at DAG parse, and again for free before the first call)."""
    if schema is not None:
        _checked_schema(_key(schema))


@dataclass(frozen=True)
class AgentConfig:
    """Everything static about one agent (templated fields still unrendered)."""

    task_id: str
    prompt: str
    llm_conn_id: str
    provider: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    temperature: float | None = None
    max_tokens: int = 1024
    request_timeout: float | None = None
    output_schema: dict[str, Any] | None = None
    max_rounds: int = 8
    repeat_until: str | None = None
    max_iterations: int = 3
    condition: str | None = None
    upstream_tasks: dict[str, str] = field(default_factory=dict)
    critical_upstreams: list[str] = field(default_factory=list)
    item: Any = None
    agent_meta: dict[str, Any] = field(default_factory=dict)
    prompt_context: str = "airflow"
    #: Ledger identity: the module (task group) and agent names.
    module: str = "-"
    agent: str = "agent"
    tools: dict[str, str] = field(default_factory=dict)
    cost_limit: float | None = None
    budget: dict[str, float] = field(default_factory=dict)
    rate_limits: list[dict[str, Any]] = field(default_factory=list)
    call_retries: dict[str, Any] = field(default_factory=dict)
    circuit_breaker: dict[str, Any] | bool = True
    fallbacks: list[dict[str, Any]] = field(default_factory=list)
    rate_limit_timeout: float | None = 600.0
    price_override: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def of(cls, op: Any) -> AgentConfig:
        """The settings of an operator whose attributes carry these names (``LLMAgentOperator``)."""
        names = {f.name for f in fields(cls)} - {"module", "agent"}
        group = getattr(op, "task_group", None)
        meta = getattr(op, "agent_meta", {}) or {}
        return cls(
            **{name: getattr(op, name) for name in names},
            module=str(meta.get("module") or (group.group_id if group is not None else None) or "-"),
            agent=str(meta.get("agent") or op.task_id.rsplit(".", 1)[-1]),
        )

    def loop_spec(self, *, system: str | None) -> Any:
        """The loop's view of this agent, with the rendered system prompt."""
        from airflow_agent_provider.agent_loop.state import LoopSpec

        return LoopSpec(
            task_id=self.task_id,
            label=self.label,
            system=system or None,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            timeout=self.request_timeout,
            output_schema=self.output_schema,
            max_rounds=self.max_rounds,
            repeat_until=self.repeat_until,
            max_iterations=self.max_iterations,
            agent_meta=dict(self.agent_meta),
        )

    @property
    def label(self) -> str:
        module, agent = self.agent_meta.get("module"), self.agent_meta.get("agent")
        return f"{module}.{agent}" if module and agent else self.task_id

    def guard_config(
        self,
        *,
        dag_id: str,
        run_id: str,
        conn_extras: Mapping[str, Any] | None = None,
        llm_conn_id: str | None = None,
    ) -> GuardConfig:
        """What guards this agent's calls in one run: ledger identity, budgets, limits, retries, breaker."""
        conn_id = llm_conn_id or self.llm_conn_id
        rules = [RateLimitRule(**rule) for rule in self.rate_limits]
        conn_limits = (conn_extras or {}).get("rate_limits")
        if conn_limits:
            from airflow_agent_provider.limits.policy import RateLimitPolicy

            policy = RateLimitPolicy.from_mapping(conn_limits)
            limits = {k: v for k, v in asdict(policy).items() if v is not None}
            rules.append(RateLimitRule(key=f"conn:{conn_id}", limits=limits, llm_conn_id=conn_id))
        from airflow_agent_provider.resilience.fallback import FallbackTarget

        breaker = self.circuit_breaker
        return GuardConfig(
            dag_id=dag_id,
            run_id=run_id,
            module=self.module,
            agent=self.agent,
            agent_cost_limit=self.cost_limit,
            price_override=self.price_override,
            rate_limits=tuple(rules),
            rate_limit_timeout_s=self.rate_limit_timeout,
            call_retries=dict(self.call_retries),
            breaker=None if breaker is False else ({} if breaker is True else dict(breaker)),
            fallbacks=tuple(FallbackTarget(**f) for f in self.fallbacks),
            **self.budget,
        )


__all__ = [
    "AGENT_TRIGGER",
    "BUDGET_KEYS",
    "EXECUTION_MODES",
    "PROMPT_CONTEXTS",
    "AgentConfig",
    "Execution",
    "PromptContext",
    "check_output_schema",
    "check_price_override",
    "check_rate_limits",
    "resolve_execution",
]
