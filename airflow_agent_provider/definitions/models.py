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

from collections.abc import Iterator
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from airflow_agent_provider.definitions._model_agent import (
    INHERITED_FIELDS as INHERITED_FIELDS,
    AgentDefaults as AgentDefaults,
    AgentSpec as AgentSpec,
    effective_execution as effective_execution,
)
from airflow_agent_provider.definitions._model_fields import (
    ASSET_URI_PATTERN as ASSET_URI_PATTERN,
    CONDITION_NAMES as CONDITION_NAMES,
    DEFAULT_AGENT_TIMEOUT as DEFAULT_AGENT_TIMEOUT,
    DEFAULT_START_DATE as DEFAULT_START_DATE,
    DEPENDENCY_PATTERN as DEPENDENCY_PATTERN,
    DOTTED_PATH_PATTERN as DOTTED_PATH_PATTERN,
    EXECUTION_MODES as EXECUTION_MODES,
    FOR_EACH_NAMES as FOR_EACH_NAMES,
    MAX_FOR_EACH_ITEMS as MAX_FOR_EACH_ITEMS,
    MAX_ITERATIONS as MAX_ITERATIONS,
    MAX_PROMPT_CHARS as MAX_PROMPT_CHARS,
    MAX_PROMPT_TEMPLATE_CHARS as MAX_PROMPT_TEMPLATE_CHARS,
    NAME_PATTERN as NAME_PATTERN,
    PARAM_NAME_PATTERN as PARAM_NAME_PATTERN,
    PROMPT_EXTRA_NAMES as PROMPT_EXTRA_NAMES,
    PROMPT_NAMES as PROMPT_NAMES,
    PROVIDER_BOUND_FIELDS as PROVIDER_BOUND_FIELDS,
    REPEAT_UNTIL_NAMES as REPEAT_UNTIL_NAMES,
    TOOL_NAME_PATTERN as TOOL_NAME_PATTERN,
    WORKFLOW_NAME_PATTERN as WORKFLOW_NAME_PATTERN,
    AssetUri as AssetUri,
    DependencyRef as DependencyRef,
    DottedPath as DottedPath,
    ExecutionMode as ExecutionMode,
    Name as Name,
    NonEmptyStr as NonEmptyStr,
    ParamName as ParamName,
    PromptTemplate as PromptTemplate,
    RateLimitKey as RateLimitKey,
    StrictModel as StrictModel,
    SystemPromptTemplate as SystemPromptTemplate,
    ToolName as ToolName,
    WorkflowName as WorkflowName,
    check_rate_limit_key as check_rate_limit_key,
    default_asset_uri as default_asset_uri,
    default_connection_id as default_connection_id,
    qualified_id as qualified_id,
    resolve_dependency as resolve_dependency,
)
from airflow_agent_provider.definitions._model_settings import (
    BreakerSpec as BreakerSpec,
    BudgetGateSpec as BudgetGateSpec,
    CallRetrySpec as CallRetrySpec,
    FallbackSpec as FallbackSpec,
    RateLimitSpec as RateLimitSpec,
    RetrySpec as RetrySpec,
)
from airflow_agent_provider.definitions.delivery import (
    BatchDeadline,
    BatchFallback,
    Delivery,
    check_workflow_delivery,
    delivery_defaults,
)
from airflow_agent_provider.definitions.durations import PositiveDuration
from airflow_agent_provider.definitions.output_schemas import (
    schema_mismatch,
)
from airflow_agent_provider.definitions.schedules import check_schedule


class ModuleSpec(StrictModel):
    """An ERP module (HR, Finance, ...): becomes an Airflow task group."""

    description: str = ""
    cost_budget: float | None = Field(None, gt=0, description="USD per run for this module.")
    budget_gate: BudgetGateSpec | None = Field(None, description="Spend check before the module starts.")
    delivery: Delivery | None = Field(None, description="Default delivery of the module's agents.")
    deadline: BatchDeadline | None = None
    batch_fallback: BatchFallback | None = None
    agents: list[AgentSpec] = Field(min_length=1)


ParamType = Literal["string", "integer", "number", "boolean", "array", "object"]


class ParamSpec(StrictModel):
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


class Workflow(StrictModel):
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


# The models defined in the private modules carry this module's name (as httpx does for its public
# classes), so reprs, pickles and the module policy's "defined in ..." messages name the public path.
for _model in (StrictModel, RetrySpec, RateLimitSpec, CallRetrySpec, FallbackSpec, BreakerSpec, BudgetGateSpec,
               AgentDefaults, AgentSpec):  # fmt: skip
    _model.__module__ = __name__
del _model
