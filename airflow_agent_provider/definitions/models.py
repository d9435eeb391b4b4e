"""Pydantic models of a workflow definition (the YAML schema of ``docs/definitions-contract.md``).

Every model forbids unknown keys: a misspelt ``modle:`` silently falling back to a default model would
be a costly surprise at month end. The models check shapes and values only; checks that need the
whole workflow (dependencies, cycles, tool allow-list, imports) live in :mod:`.validation`, so that
they can all be reported together instead of stopping at the first.

After validation every agent is complete: fields it does not set are taken from ``defaults:`` and
then from the built-in defaults, so the DAG factory never merges settings itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

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

from airflow_agent_provider.definitions.durations import Duration, PositiveDuration
from airflow_agent_provider.definitions.schedules import check_schedule
from airflow_agent_provider.llm.types import PROVIDERS, Provider

WORKFLOW_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
DOTTED_PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
DEPENDENCY_PATTERN = r"^([A-Za-z0-9_-]+\.)?[A-Za-z0-9_-]+$"

WorkflowName = Annotated[str, StringConstraints(pattern=WORKFLOW_NAME_PATTERN, max_length=200)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=100)]
ToolName = Annotated[str, StringConstraints(pattern=TOOL_NAME_PATTERN)]
DottedPath = Annotated[str, StringConstraints(pattern=DOTTED_PATH_PATTERN)]
DependencyRef = Annotated[str, StringConstraints(pattern=DEPENDENCY_PATTERN)]
NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]

DEFAULT_START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEFAULT_AGENT_TIMEOUT = timedelta(minutes=10)

# Settings that only make sense for the provider they were written for: an agent that switches
# provider does not inherit them from ``defaults:`` (an OpenAI model name sent to Anthropic fails).
PROVIDER_BOUND_FIELDS = frozenset({"connection", "model"})


def default_connection_id(provider: str) -> str:
    """The Airflow connection used when neither the agent nor ``defaults:`` names one."""
    return f"agent_{provider}_default"


def qualified_id(module: str, agent_name: str) -> str:
    """``Module.agent``: the agent's task id inside its module's task group."""
    return f"{module}.{agent_name}"


def resolve_dependency(module: str, dependency: str) -> str:
    """Qualify a dependency reference: ``agent`` means the same module, ``Module.agent`` another."""
    return dependency if "." in dependency else qualified_id(module, dependency)


def check_rate_limit_key(key: str) -> str:
    """A ``rate_limits`` key is a known provider, or ``provider/model``; a typo would limit nothing."""
    provider, slash, model = key.partition("/")
    if provider not in PROVIDERS:
        raise ValueError(f"rate-limit key {key!r} must be a provider ({', '.join(PROVIDERS)}) or 'provider/model'")
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


class PriceOverride(_Strict):
    """USD per million tokens, for models genai-prices does not know (or negotiated prices)."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = Field(None, ge=0)


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
    system_prompt: str | None = None
    retries: RetrySpec = Field(default_factory=RetrySpec)
    timeout: PositiveDuration | None = DEFAULT_AGENT_TIMEOUT
    max_rounds: int = Field(8, ge=1, description="Bound on tool-calling rounds.")
    critical: bool = Field(True, description="A failure fails the run unless partial completion is allowed.")
    deferrable: bool = False


INHERITED_FIELDS: tuple[str, ...] = tuple(AgentDefaults.model_fields)


class AgentSpec(AgentDefaults):
    """One LLM agent: becomes one Airflow task ``Module.agent``."""

    name: Name
    description: str = ""
    prompt: NonEmptyStr = Field(description="Jinja template; upstream results under `results`.")
    tools: list[ToolName] = Field(default_factory=list)
    dependencies: list[DependencyRef] = Field(default_factory=list)
    priority: int = Field(1, ge=1, description="Airflow priority_weight.")
    cost_limit: float | None = Field(None, gt=0, description="USD for this agent per run.")
    price: PriceOverride | None = None
    pool: NonEmptyStr | None = None
    pool_slots: int = Field(1, ge=1)

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
    agents: list[AgentSpec] = Field(min_length=1)


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
    defaults: AgentDefaults = Field(default_factory=AgentDefaults)
    modules: dict[Name, ModuleSpec] = Field(min_length=1)

    _source_path: Path | None = PrivateAttr(default=None)

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, value: str | None) -> str | None:
        return None if value is None else check_schedule(value)

    @model_validator(mode="after")
    def _apply_defaults(self) -> Workflow:
        for module in self.modules.values():
            module.agents = [agent.with_defaults(self.defaults) for agent in module.agents]
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
