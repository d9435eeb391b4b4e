"""
Pydantic models of a workflow definition (the YAML schema of ``docs/definitions-contract.md``).

Every model forbids unknown keys: a misspelt ``modle:`` silently falling back to a default model would
be a costly surprise at month end. The models check shapes and values only; checks that need the
whole workflow (dependencies, cycles, tool allow-list, imports) live in :mod:`.validation`, so that
they can all be reported together instead of stopping at the first.

After validation every agent is complete: fields it does not set are taken from ``defaults:`` and
then from the built-in defaults, so the DAG factory never merges settings itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from airflow_agent_provider._connections import default_conn_id
from airflow_agent_provider.cost.pricing import PriceOverride  # one class: the definition's and the engine's
from airflow_agent_provider.definitions.delivery import (
    DEFAULT_BATCH_DEADLINE,
    DEFAULT_BATCH_FALLBACK,
    DEFAULT_DELIVERY,
    BatchDeadline,
    BatchFallback,
    Delivery,
    check_workflow_delivery,
    delivery_defaults,
)
from airflow_agent_provider.definitions.durations import Duration, PositiveDuration
from airflow_agent_provider.definitions.expressions import Expression, ExpressionError, compile_expression
from airflow_agent_provider.definitions.output_schemas import (
    check_json_schema,
    resolve_output_schema,
    schema_mismatch,
)
from airflow_agent_provider.definitions.schedules import check_schedule
from airflow_agent_provider.llm.types import PROVIDERS, Provider

WORKFLOW_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
DOTTED_PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
DEPENDENCY_PATTERN = r"^([A-Za-z0-9_-]+\.)?[A-Za-z0-9_-]+$"
PARAM_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
ASSET_URI_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*://[!-~]+$"

WorkflowName = Annotated[str, StringConstraints(pattern=WORKFLOW_NAME_PATTERN, max_length=200)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=100)]
ToolName = Annotated[str, StringConstraints(pattern=TOOL_NAME_PATTERN)]
DottedPath = Annotated[str, StringConstraints(pattern=DOTTED_PATH_PATTERN)]
DependencyRef = Annotated[str, StringConstraints(pattern=DEPENDENCY_PATTERN)]
NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
ParamName = Annotated[str, StringConstraints(pattern=PARAM_NAME_PATTERN)]
AssetUri = Annotated[str, StringConstraints(pattern=ASSET_URI_PATTERN, max_length=1500)]

# The names each expression field may read (see :mod:`.expressions` for the syntax).
CONDITION_NAMES = frozenset({"results", "params", "item"})
FOR_EACH_NAMES = frozenset({"results", "params"})
REPEAT_UNTIL_NAMES = frozenset({"last", "iteration", "params", "results", "item"})
# Names a prompt may use besides ``results``/``upstream_text`` (kept for the operator's context building).
PROMPT_EXTRA_NAMES = frozenset({"item", "params", "iteration", "last"})
#: Every name a YAML workflow's templated field (prompt, system_prompt, model, connection) may read. Not
#: Airflow's full template context: ``conn``, ``var``, ``ti``, ``macros``... would hand secrets and
#: the metadata of other tasks to a workflow file author and, through the model's reply, to XCom.
PROMPT_NAMES = frozenset(
    {
        "results",
        "upstream_text",
        "params",
        "item",
        "last",
        "iteration",
        "ds",
        "logical_date",
        "run_id",
        "dag_id",
    }
)
#: Longest prompt or system prompt *template* in a workflow file (characters).
MAX_PROMPT_TEMPLATE_CHARS = 100_000
#: Longest *rendered* prompt (characters) the operator sends: past any model's context window
#: (about 250,000 tokens), so a longer one is a runaway template or upstream result, not a prompt.
MAX_PROMPT_CHARS = 1_000_000
PromptTemplate = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROMPT_TEMPLATE_CHARS)]
SystemPromptTemplate = Annotated[str, StringConstraints(max_length=MAX_PROMPT_TEMPLATE_CHARS)]
MAX_FOR_EACH_ITEMS = 1024  # Airflow's default max_map_length
#: Where an agent runs (``execution:``). ``auto`` picks per agent from what it uses; see :func:`effective_execution`.
EXECUTION_MODES: tuple[str, ...] = ("auto", "worker", "deferred", "triggerer")
ExecutionMode = Literal["auto", "worker", "deferred", "triggerer"]
MAX_ITERATIONS = 50

DEFAULT_START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEFAULT_AGENT_TIMEOUT = timedelta(minutes=10)

# Settings that only make sense for the provider they were written for: an agent that switches
# provider does not inherit them from ``defaults:`` (an OpenAI model name sent to Anthropic fails).
PROVIDER_BOUND_FIELDS = frozenset({"connection", "model"})


def default_connection_id(provider: str) -> str:
    """The Airflow connection used when neither the agent nor ``defaults:`` names one."""
    return default_conn_id(provider)


def qualified_id(module: str, agent_name: str) -> str:
    """``Module.agent``: the agent's task id inside its module's task group."""
    return f"{module}.{agent_name}"


def resolve_dependency(module: str, dependency: str) -> str:
    """Qualify a dependency reference: ``agent`` means the same module, ``Module.agent`` another."""
    return dependency if "." in dependency else qualified_id(module, dependency)


def default_asset_uri(workflow_name: str) -> str:
    """The asset a workflow emits when it succeeds, unless ``produces:`` names another one."""
    return f"agent-workflow://{workflow_name}"


def check_rate_limit_key(key: str) -> str:
    """A ``rate_limits`` key is a known provider, or ``provider/model``; a typo would limit nothing."""
    provider, slash, model = key.partition("/")
    if provider not in PROVIDERS:
        raise ValueError(
            f"rate-limit key {key!r} must be a provider ({', '.join(PROVIDERS)}) or 'provider/model'"
        )
    if slash and not model.strip():
        raise ValueError(f"rate-limit key {key!r} has no model after '/'")
    return key


RateLimitKey = Annotated[str, AfterValidator(check_rate_limit_key)]


class _Strict(BaseModel):
    """Base of every model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class RetrySpec(_Strict):
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


class RateLimitSpec(_Strict):
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


class CallRetrySpec(_Strict):
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


class FallbackSpec(_Strict):
    """Another model (or provider) to use while this one's breaker is open or it keeps failing."""

    provider: Provider
    model: NonEmptyStr
    connection: NonEmptyStr | None = Field(None, description="Default: agent_<provider>_default.")


class BreakerSpec(_Strict):
    """The circuit breaker per provider/model, shared by every worker through the store."""

    enabled: bool = True
    failure_threshold: int = Field(5, ge=1, description="Transient failures within `window` that open it.")
    window: PositiveDuration = timedelta(seconds=60)
    reset_timeout: PositiveDuration = Field(
        timedelta(seconds=30), description="Open time before trial calls."
    )
    half_open_max_calls: int = Field(1, ge=1)


class BudgetGateSpec(_Strict):
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


class AgentDefaults(_Strict):
    """
    Settings shared by the agents of a workflow; an agent's own value always wins.

    The same fields exist on :class:`AgentSpec` with the same built-in defaults; ``model_fields_set``
    tells which ones the workflow author actually wrote.
    """

    provider: Provider = "openai"
    connection: NonEmptyStr | None = Field(None, description="Default: agent_<provider>_default.")
    model: NonEmptyStr | None = None
    temperature: float | None = Field(None, ge=0, le=2, description="None: the provider's default.")
    max_tokens: int = Field(1024, ge=1)
    system_prompt: SystemPromptTemplate | None = None
    retries: RetrySpec = Field(default_factory=RetrySpec)
    timeout: PositiveDuration | None = DEFAULT_AGENT_TIMEOUT
    max_rounds: int = Field(8, ge=1, description="Bound on tool-calling rounds.")
    critical: bool = Field(True, description="A failure fails the run unless partial completion is allowed.")
    deferrable: bool = Field(
        False, description="Wait for the model on the triggerer (execution: auto means deferred)."
    )
    execution: ExecutionMode = Field(
        "auto",
        description="Where the agent runs: auto (chosen from what it uses), worker, deferred (on the triggerer "
        "between model rounds, a worker for tools), triggerer (start and finish in the triggerer; no tools).",
    )
    request_timeout: PositiveDuration | None = Field(
        None, description="Per model call; None: the connection's."
    )
    call_retries: CallRetrySpec = Field(default_factory=CallRetrySpec)
    fallbacks: list[FallbackSpec] = Field(default_factory=list)
    delivery: Delivery = Field(DEFAULT_DELIVERY, description="realtime calls, or the providers' batch APIs.")
    deadline: BatchDeadline = Field(DEFAULT_BATCH_DEADLINE, description="Longest wait for a batch answer.")
    batch_fallback: BatchFallback = Field(
        DEFAULT_BATCH_FALLBACK, description="A retried batch request near its deadline: batch or realtime."
    )

    @model_validator(mode="after")
    def _execution_agrees_with_deferrable(self) -> AgentDefaults:
        # Both written in the same place and saying opposite things: which one was meant is a guess.
        if self.execution == "worker" and self.deferrable and "deferrable" in self.model_fields_set:
            raise ValueError(
                "execution: worker contradicts deferrable: true (deferrable means waiting on the triggerer); "
                "drop deferrable, or use execution: deferred"
            )
        return self

    @property
    def requested_execution(self) -> str:
        """``execution`` with ``deferrable`` folded in (see :func:`effective_execution`)."""
        return effective_execution(self.execution, self.deferrable)


INHERITED_FIELDS: tuple[str, ...] = tuple(AgentDefaults.model_fields)


def effective_execution(execution: str, deferrable: bool) -> str:
    """
    How ``execution`` and the older ``deferrable`` flag combine into one requested mode.

    An explicit ``worker``, ``deferred`` or ``triggerer`` wins over ``deferrable``. ``auto`` with
    ``deferrable: true`` means ``deferred`` (what ``deferrable: true`` always meant); ``auto`` with
    ``deferrable: false`` stays ``auto``: the operator/builder chooses from what the agent uses.
    """
    if execution == "auto" and deferrable:
        return "deferred"
    return execution


def _expression_field(value: str | None, names: frozenset[str]) -> str | None:
    """Compile at load time so a bad expression is a definition error with its column, not a failed task."""
    if value is None:
        return None
    try:
        compile_expression(value, names)
    except ExpressionError as exc:
        raise ValueError(f"invalid expression {_short(value)}: {exc}") from None
    return value


def _short(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57] + "...")


class AgentSpec(AgentDefaults):
    """
    One LLM agent: becomes one Airflow task ``Module.agent``.

    The control-flow fields (``condition``, ``for_each``, ``output_schema``, ``repeat_until``,
    ``max_iterations``) are the agent's own and never come from ``defaults:``: a condition or a loop
    copied onto every agent of a workflow would almost never be what the author meant.
    """

    name: Name
    description: str = ""
    prompt: PromptTemplate = Field(description="Jinja template; upstream results under `results`.")
    tools: list[ToolName] = Field(default_factory=list)
    dependencies: list[DependencyRef] = Field(default_factory=list)
    priority: int = Field(1, ge=1, description="Airflow priority_weight.")
    cost_limit: float | None = Field(None, gt=0, description="USD for this agent per run.")
    price: PriceOverride | None = None
    pool: NonEmptyStr | None = None
    pool_slots: int = Field(1, ge=1)
    condition: str | None = Field(
        None, description="Expression over results/params; the agent is skipped when it is false."
    )
    for_each: list[Any] | str | None = Field(
        None, description="A list, or an expression over results/params giving one; one run per item."
    )
    output_schema: dict[str, Any] | DottedPath | None = Field(
        None, description="JSON Schema of a structured answer, or a dotted path to a pydantic model."
    )
    repeat_until: str | None = Field(
        None, description="Expression over last/iteration/params/results; repeat the call until true."
    )
    max_iterations: int = Field(3, ge=1, le=MAX_ITERATIONS, description="Bound on repeat_until rounds.")

    @field_validator("condition")
    @classmethod
    def _check_condition(cls, value: str | None) -> str | None:
        return _expression_field(value, CONDITION_NAMES)

    @field_validator("repeat_until")
    @classmethod
    def _check_repeat_until(cls, value: str | None) -> str | None:
        return _expression_field(value, REPEAT_UNTIL_NAMES)

    @field_validator("for_each")
    @classmethod
    def _check_for_each(cls, value: list[Any] | str | None) -> list[Any] | str | None:
        if isinstance(value, list):
            if not value:
                raise ValueError("for_each must not be an empty list (the agent would never run)")
            if len(value) > MAX_FOR_EACH_ITEMS:
                raise ValueError(f"for_each has {len(value)} items; at most {MAX_FOR_EACH_ITEMS}")
            return value
        return _expression_field(value, FOR_EACH_NAMES)

    @field_validator("for_each", mode="before")
    @classmethod
    def _for_each_shape(cls, value: Any) -> Any:
        # One clear message instead of one pydantic error per member of the union.
        if value is not None and not isinstance(value, (list, str)):
            raise ValueError(f"for_each must be a list or an expression string, got {type(value).__name__}")
        return value

    @field_validator("output_schema", mode="before")
    @classmethod
    def _output_schema_shape(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(DOTTED_PATH_PATTERN, value):
            raise ValueError(
                f"output_schema as text must be the dotted path of a pydantic model such as "
                f"'package.module.Model', got {value!r}"
            )
        if value is not None and not isinstance(value, (dict, str)):
            raise ValueError(
                f"output_schema must be a JSON Schema mapping or a dotted path to a pydantic model, got {type(value).__name__}"
            )
        return value

    @field_validator("output_schema")
    @classmethod
    def _check_output_schema(cls, value: dict[str, Any] | str | None) -> dict[str, Any] | str | None:
        if isinstance(value, dict):
            check_json_schema(value)
        return value

    def condition_expression(self) -> Expression | None:
        """The compiled ``condition`` (None when the agent always runs)."""
        return None if self.condition is None else compile_expression(self.condition, CONDITION_NAMES)

    def for_each_expression(self) -> Expression | None:
        """The compiled ``for_each`` when it is an expression; None for a static list or no fan-out."""
        if not isinstance(self.for_each, str):
            return None
        return compile_expression(self.for_each, FOR_EACH_NAMES)

    def static_for_each(self) -> list[Any] | None:
        """The ``for_each`` items when they are written in the file; None otherwise."""
        return list(self.for_each) if isinstance(self.for_each, list) else None

    def repeat_until_expression(self) -> Expression | None:
        """The compiled ``repeat_until`` (None when the agent answers once)."""
        return (
            None if self.repeat_until is None else compile_expression(self.repeat_until, REPEAT_UNTIL_NAMES)
        )

    def resolved_output_schema(self) -> dict[str, Any] | None:
        """
        The JSON Schema of the structured answer, or None for free text.

        A dotted path is imported and turned into ``model_json_schema()``; every call returns a fresh
        copy, so callers may change it (e.g. add ``additionalProperties``) without affecting others.

        :raises ValueError: the dotted path does not import to a pydantic model (checked at load time).
        """
        return resolve_output_schema(self.output_schema)

    def with_defaults(self, defaults: AgentDefaults) -> AgentSpec:
        """
        Return a copy with every field the agent did not set taken from ``defaults``.

        ``connection`` and ``model`` are only inherited when the agent uses the same provider as the
        defaults; a missing connection then falls back to ``agent_<provider>_default``.
        """
        own = self.model_fields_set
        provider = self.provider if "provider" in own else defaults.provider
        update: dict[str, Any] = {}
        for field in INHERITED_FIELDS:
            if field in own or field not in defaults.model_fields_set:
                continue
            if field in PROVIDER_BOUND_FIELDS and provider != defaults.provider:
                continue
            value = getattr(defaults, field)
            update[field] = value.model_copy() if isinstance(value, BaseModel) else value
        if "connection" not in own and update.get("connection") is None:
            update["connection"] = default_connection_id(provider)
        return self.model_copy(update=update)


class ModuleSpec(_Strict):
    """An ERP module (HR, Finance, ...): becomes an Airflow task group."""

    description: str = ""
    cost_budget: float | None = Field(None, gt=0, description="USD per run for this module.")
    budget_gate: BudgetGateSpec | None = Field(None, description="Spend check before the module starts.")
    delivery: Delivery | None = Field(None, description="Default delivery of the module's agents.")
    deadline: BatchDeadline | None = None
    batch_fallback: BatchFallback | None = None
    agents: list[AgentSpec] = Field(min_length=1)


ParamType = Literal["string", "integer", "number", "boolean", "array", "object"]


class ParamSpec(_Strict):
    """
    A run parameter: becomes an Airflow ``Param`` and is readable as ``params.<name>``.

    The default is checked against the type, enum and bounds here, with the same JSON Schema rules
    Airflow applies, so a wrong default fails when the file is loaded rather than at the first run.
    """

    type: ParamType
    default: Any = None
    description: str = ""
    enum: list[Any] | None = Field(None, min_length=1)
    minimum: float | None = None
    maximum: float | None = None

    @model_validator(mode="after")
    def _check_consistent(self) -> ParamSpec:
        numeric = self.type in ("integer", "number")
        for bound in ("minimum", "maximum"):
            if getattr(self, bound) is not None and not numeric:
                raise ValueError(f"{bound} only applies to integer or number params, not {self.type}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum ({self.minimum:g}) is greater than maximum ({self.maximum:g})")
        for value in self.enum or ():
            reason = schema_mismatch({"type": self.type}, value)
            if reason:
                raise ValueError(f"enum value {value!r} does not fit type {self.type}: {reason}")
        if self.has_default:
            reason = schema_mismatch(self.json_schema(), self.default)
            if reason:
                raise ValueError(f"default {self.default!r} does not fit this param: {reason}")
        return self

    @property
    def has_default(self) -> bool:
        """False when the person triggering the run must give a value (``default`` absent or null)."""
        return self.default is not None

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema keywords of the param (``type``, ``enum``, ``minimum``, ``maximum``)."""
        schema: dict[str, Any] = {"type": self.type}
        for keyword in ("enum", "minimum", "maximum"):
            value = getattr(self, keyword)
            if value is not None:
                schema[keyword] = int(value) if isinstance(value, float) and value.is_integer() else value
        return schema


def _to_utc_datetime(value: Any) -> Any:
    """YAML reads ``2026-01-01`` as a date; Airflow wants an aware datetime (naive means UTC)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


class Workflow(_Strict):
    """A whole workflow file: becomes one DAG."""

    name: WorkflowName
    description: str = ""
    schedule: str | None = None
    start_date: Annotated[datetime, BeforeValidator(_to_utc_datetime)] = DEFAULT_START_DATE
    catchup: bool = False
    tags: list[str] = Field(default_factory=list)
    owner: NonEmptyStr = "airflow"
    cost_budget: float | None = Field(None, gt=0, description="USD per DAG run.")
    daily_budget: float | None = Field(None, gt=0, description="USD per UTC day.")
    monthly_budget: float | None = Field(None, gt=0, description="USD per UTC month.")
    timeout: PositiveDuration | None = Field(None, description="dagrun_timeout.")
    max_parallel_agents: int | None = Field(None, ge=1, description="max_active_tasks.")
    allow_partial_completion: bool = False
    tools: dict[ToolName, DottedPath] = Field(default_factory=dict)
    rate_limits: dict[RateLimitKey, RateLimitSpec] = Field(default_factory=dict)
    circuit_breaker: BreakerSpec = Field(default_factory=BreakerSpec)
    budget_gate: BudgetGateSpec | None = Field(None, description="Spend check before any agent starts.")
    defaults: AgentDefaults = Field(default_factory=AgentDefaults)
    delivery: Delivery | None = Field(None, description="Default delivery of every agent (see delivery.py).")
    deadline: BatchDeadline | None = None
    batch_fallback: BatchFallback | None = None
    modules: dict[Name, ModuleSpec] = Field(min_length=1)
    params: dict[ParamName, ParamSpec] = Field(default_factory=dict, description="Airflow Params.")
    triggered_by: list[WorkflowName] = Field(
        default_factory=list,
        description="Workflows whose completion starts this one (schedule must be null).",
    )
    produces: AssetUri | None = Field(
        None, description="Asset URI emitted on success; agent-workflow://<name>."
    )

    _source_path: Path | None = PrivateAttr(default=None)

    @field_validator("produces")
    @classmethod
    def _check_produces(cls, value: str | None) -> str | None:
        if value is not None and value.partition("://")[0].lower() == "airflow":
            raise ValueError("the 'airflow' URI scheme is reserved by Airflow; use another scheme")
        return value

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, value: str | None) -> str | None:
        return None if value is None else check_schedule(value)

    @model_validator(mode="after")
    def _apply_defaults(self) -> Workflow:
        for module in self.modules.values():
            defaults = delivery_defaults(self, module)
            module.agents = [agent.with_defaults(defaults) for agent in module.agents]
        check_workflow_delivery(self)
        if self.produces is None:
            self.produces = default_asset_uri(self.name)
        return self

    @property
    def source_path(self) -> Path | None:
        """The file the workflow was loaded from (None when built in code)."""
        return self._source_path

    def iter_agents(self) -> Iterator[tuple[str, AgentSpec]]:
        """Yield ``(module_name, agent)`` in file order, defaults applied."""
        for module_name, module in self.modules.items():
            for agent in module.agents:
                yield module_name, agent

    @staticmethod
    def agent_id(module: str, agent_name: str) -> str:
        """``Module.agent``: the Airflow task id of the agent inside its module's task group."""
        return qualified_id(module, agent_name)

    def get_agent(self, qualified: str) -> AgentSpec:
        """The agent with id ``Module.agent``; :class:`KeyError` if there is none."""
        module_name, _, agent_name = qualified.partition(".")
        module = self.modules.get(module_name)
        if module is not None:
            for agent in module.agents:
                if agent.name == agent_name:
                    return agent
        raise KeyError(f"workflow {self.name!r} has no agent {qualified!r}")

    def upstream_ids(self, qualified: str) -> list[str]:
        """The agent's dependencies as qualified ids ``Module.agent``, in the order written."""
        module_name = qualified.partition(".")[0]
        return [resolve_dependency(module_name, dep) for dep in self.get_agent(qualified).dependencies]


def _fmt(value: timedelta) -> str:
    seconds = value.total_seconds()
    return f"{seconds:g}s"
