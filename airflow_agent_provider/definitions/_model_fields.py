"""
The field types, name patterns and constants that the workflow models share, and their strict base.

Kept apart from the models so that the agent, settings and workflow models (and the checks that
quote the patterns in their messages) all read one definition.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
)

from airflow_agent_provider._connections import default_conn_id
from airflow_agent_provider._prompt_names import WORKFLOW_PROMPT_NAMES
from airflow_agent_provider.llm.types import PROVIDERS

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
#: Every name a YAML workflow's templated field may read (the one list: ``_prompt_names``, which the
#: operators and triggers render with).
PROMPT_NAMES = frozenset(WORKFLOW_PROMPT_NAMES)
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


class StrictModel(BaseModel):
    """Base of every model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")
