"""The agent models: the settings a workflow's ``defaults:`` share, and one complete agent."""

from __future__ import annotations

import re
from typing import Any

from pydantic import (
    BaseModel,
    Field,
    field_validator,
    model_validator,
)

from airflow_agent_provider.cost.pricing import PriceOverride  # one class: the definition's and the engine's
from airflow_agent_provider.definitions._model_fields import (
    CONDITION_NAMES,
    DEFAULT_AGENT_TIMEOUT,
    DOTTED_PATH_PATTERN,
    FOR_EACH_NAMES,
    MAX_FOR_EACH_ITEMS,
    MAX_ITERATIONS,
    PROVIDER_BOUND_FIELDS,
    REPEAT_UNTIL_NAMES,
    DependencyRef,
    DottedPath,
    ExecutionMode,
    Name,
    NonEmptyStr,
    PromptTemplate,
    StrictModel,
    SystemPromptTemplate,
    ToolName,
    default_connection_id,
)
from airflow_agent_provider.definitions._model_settings import (
    CallRetrySpec,
    FallbackSpec,
    RetrySpec,
)
from airflow_agent_provider.definitions.delivery import (
    DEFAULT_BATCH_DEADLINE,
    DEFAULT_BATCH_FALLBACK,
    DEFAULT_DELIVERY,
    BatchDeadline,
    BatchFallback,
    Delivery,
)
from airflow_agent_provider.definitions.durations import PositiveDuration
from airflow_agent_provider.definitions.expressions import Expression, ExpressionError, compile_expression
from airflow_agent_provider.definitions.output_schemas import (
    check_json_schema,
    resolve_output_schema,
)
from airflow_agent_provider.llm.types import Provider


class AgentDefaults(StrictModel):
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
