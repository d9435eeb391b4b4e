"""
An agent's static settings as one typed record, and where its execution mode comes from.

``AgentConfig`` is what the operator knows when the DAG is built (templates not yet rendered),
including its :class:`~airflow_agent_provider.guard.config.GuardConfig`. It crosses to the
triggerer in two ways: inside a deferral, through :meth:`AgentConfig.to_dict` (only the fields
that differ from their defaults) and :meth:`AgentConfig.from_dict`; and as the
``start_trigger_args`` of a triggerer-only agent, which are serialized with the DAG, once per
task, through :meth:`AgentConfig.to_start_kwargs` and :meth:`AgentConfig.from_start_kwargs`.

Why the start kwargs leave out what the task carries: in Airflow 3.3 the triggerer's supervisor
deserializes the whole serialized DAG for every ``start_from_trigger`` task, ships it to the trigger
runner, and the runner deserializes it again to rebuild that task (``create_runtime_ti``). A fleet
of N such agents therefore costs N whole-DAG deserializations of a DAG that grows with N, and
every byte of an agent task is paid N times over. The task already serializes its templated
fields (prompt, system prompt, model, connection), ``task_id`` and ``execution_timeout``, and the
guard's ledger identity follows from the task id, the agent's metadata and its task group, so the
start kwargs do not repeat them; the trigger reads them from the task the triggerer rebuilt. The
agent's metadata is left out too when it is what the task's own identity implies (workflow = DAG
id, module = task group, agent = the task id's last part, critical), as every agent a workflow
file defines has it (:func:`derived_meta`). It holds connection ids, never a key.

Checking a JSON schema is cached per distinct schema (:func:`check_output_schema` imports
``jsonschema`` only when an agent has one).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from airflow_agent_provider.guard.config import GuardConfig

if TYPE_CHECKING:
    from airflow_agent_provider.agent_loop.state import AgentLoop, LoopSpec

Execution = Literal["auto", "worker", "deferred", "triggerer"]
EXECUTION_MODES: tuple[str, ...] = ("auto", "worker", "deferred", "triggerer")
PromptContext = Literal["airflow", "workflow"]
PROMPT_CONTEXTS: tuple[str, ...] = ("airflow", "workflow")
#: The trigger a triggerer-only agent starts with (``start_trigger_args.trigger_cls``).
AGENT_TRIGGER = "airflow_agent_provider.triggers.agent.AgentTrigger"


def resolve_execution(execution: str, *, deferrable: bool, has_tools: bool) -> str:
    """
    The mode an agent runs in: ``worker``, ``deferred`` or ``triggerer``.

    ``auto``: ``deferred`` when ``deferrable`` asks for it, else ``worker`` — a tool-less deferred
    agent starts on a worker and then runs and ends in the triggerer (one worker start); an agent
    with tools defers once per round and runs its tools on the worker. ``triggerer`` (no worker at
    all) is opt-in, not an ``auto`` choice, because in Airflow 3.3 the scheduler hands
    ``start_from_trigger`` tasks to the triggerer without counting them against pools, and the
    triggerer deserializes the whole DAG once per such task (cost growing with the square of the
    fleet): both are trade-offs the workflow author should choose. Reading upstream results does
    not change the choice: every mode reads them (``triggerer`` through the triggerer's XCom
    access). An explicit mode wins over ``deferrable``; ``triggerer`` with tools is an error.
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


def guard_identity(task_id: str, agent_meta: Mapping[str, Any], group_id: str | None) -> tuple[str, str]:
    """The ledger identity (module, agent) of an agent's calls: its metadata, else its task id."""
    module = str(agent_meta.get("module") or group_id or "-")
    agent = str(agent_meta.get("agent") or _agent_name(task_id))
    return module, agent


def _agent_name(task_id: str) -> str:
    """The agent's name within its module: the last part of its task id."""
    return task_id.rsplit(".", 1)[-1]


def _group_id(task: Any) -> str | None:
    return getattr(getattr(task, "task_group", None), "group_id", None)


#: The ``AgentConfig`` fields the serialized task itself carries (its templated fields, ``task_id``,
#: ``execution_timeout``): left out of a triggerer-only agent's start kwargs (module docstring).
TASK_FIELDS: tuple[str, ...] = (
    "task_id",
    "prompt",
    "system_prompt",
    "model",
    "llm_conn_id",
    "execution_timeout_s",
)


#: The start-kwargs key that stands for "agent_meta is what derived_meta(task) gives" (plus any
#: other keys agent_meta still holds).
META_DERIVED = "agent_meta_derived"


def derived_meta(task: Any) -> dict[str, Any]:
    """
    The agent metadata a task's identity implies, in the factory's key order: the workflow is the
    DAG id, the module the task group, the agent the last part of the task id, and it is critical.
    Empty when the task has no DAG or no task group yet (nothing is implied then).
    """
    group_id = _group_id(task)
    try:
        dag_id = task.dag.dag_id if task.has_dag() else None
    except Exception:  # a task outside any DAG
        dag_id = None
    if not dag_id or not group_id:
        return {}
    return {
        "workflow": dag_id,
        "module": group_id,
        "agent": _agent_name(task.task_id),
        "critical": True,
    }


def _task_values(task: Any) -> dict[str, Any]:
    """The :data:`TASK_FIELDS` of an operator, or of the task Airflow rebuilt from the serialized DAG."""
    timeout = getattr(task, "execution_timeout", None)
    return {
        "task_id": task.task_id,
        # Airflow leaves an empty templated field out of the serialized task
        "prompt": getattr(task, "prompt", None) or "",
        "system_prompt": getattr(task, "system_prompt", None),
        "model": getattr(task, "model", None),
        "llm_conn_id": task.llm_conn_id,
        "execution_timeout_s": timeout.total_seconds() if timeout is not None else None,
    }


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


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
    tools: dict[str, str] = field(default_factory=dict)
    #: What guards the agent's calls (budgets, limits, retries, breaker, fallbacks; no run yet).
    guard: GuardConfig = GuardConfig()
    #: The task's ``execution_timeout`` in seconds, counted in the triggerer from when the trigger
    #: starts running (time queued for a triggerer does not count).
    execution_timeout_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, only the fields that differ from their defaults (see the module docstring)."""
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.default is not dataclasses.MISSING and value == f.default:
                continue
            if f.default_factory is not dataclasses.MISSING and value == f.default_factory():
                continue
            data[f.name] = value.to_dict() if isinstance(value, GuardConfig) else value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentConfig:
        """The inverse of :meth:`to_dict`; an unknown key is an error (a setting must never be dropped)."""
        values = dict(data)
        if "guard" in values:
            values["guard"] = GuardConfig.from_dict(values["guard"])
        return cls(**values)

    def to_start_kwargs(self, task: Any = None) -> str:
        """
        What a triggerer-only agent's ``start_trigger_args`` carry, as compact JSON: :meth:`to_dict`
        without what the task carries (:data:`TASK_FIELDS`), without the guard's ledger identity,
        which :meth:`from_start_kwargs` derives as the operator did, and, given the ``task``,
        without the metadata its identity implies (:func:`derived_meta`; module docstring).

        One JSON string rather than a mapping because Airflow's serializer wraps every nested
        mapping in ``{"__var": ..., "__type": "dict"}``, which more than doubles these bytes, and the
        triggerer ships the whole serialized DAG once per such task.
        """
        data = self.to_dict()
        for name in TASK_FIELDS:
            data.pop(name, None)
        guard = data.pop("guard", {})
        guard.pop("module", None)
        guard.pop("agent", None)
        if guard:
            data["guard"] = guard
        implied = derived_meta(task) if task is not None else {}
        if implied and self.agent_meta.items() >= implied.items():
            rest = {k: v for k, v in self.agent_meta.items() if k not in implied}
            data.pop("agent_meta", None)
            if rest:
                data["agent_meta"] = rest
            data[META_DERIVED] = True
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_start_kwargs(cls, text: str, task: Any) -> AgentConfig:
        """
        The inverse of :meth:`to_start_kwargs`, completed from ``task``: the one the triggerer
        rebuilt from the serialized DAG (``SerializedBaseOperator``), or the operator itself.
        """
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError(f"start kwargs must be a JSON object, got {type(values).__name__}")
        unexpected = sorted(set(values) & set(TASK_FIELDS))
        if unexpected:
            raise ValueError(f"start kwargs must not repeat what the task carries: {unexpected}")
        if values.pop(META_DERIVED, False):
            implied = derived_meta(task)
            if not implied:
                raise ValueError(
                    "start kwargs say agent_meta follows from the task, which has no DAG or task group"
                )
            values["agent_meta"] = {**implied, **(values.get("agent_meta") or {})}
        meta = values.get("agent_meta") or {}
        module, agent = guard_identity(task.task_id, meta, _group_id(task))
        guard = dict(values.get("guard") or {})
        if "module" in guard or "agent" in guard:
            raise ValueError("start kwargs must not carry the guard's ledger identity")
        values["guard"] = {**guard, "module": module, "agent": agent}
        return cls.from_dict({**values, **_task_values(task)})

    @classmethod
    def of(cls, op: Any) -> AgentConfig:
        """The settings of an operator whose attributes carry these names (``LLMAgentOperator``)."""
        names = {f.name for f in dataclasses.fields(cls)} - set(TASK_FIELDS)
        return cls(**{name: getattr(op, name) for name in names}, **_task_values(op))

    def loop_spec(self, *, system: str | None) -> LoopSpec:
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


@dataclass
class AgentRun:
    """
    What a worker hands the triggerer when the rest of a tool-less agent's loop runs there.

    Everything is resolved and rendered: the loop so far, its spec, the guard bound to the run,
    the provider, the reservation-id prefix of the task try, the names ``repeat_until`` and the
    prompt read, and ``timeout_s``, the agent's remaining ``execution_timeout``, which the trigger
    counts from when it starts running (not from when it was queued).
    """

    loop: AgentLoop
    spec: LoopSpec
    guard: GuardConfig
    llm_conn_id: str
    provider: str
    step_prefix: str
    names: dict[str, Any] = field(default_factory=dict)
    item_fields: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "loop": self.loop.to_dict(),
            "spec": self.spec.to_dict(),
            "guard": self.guard.to_dict(),
            "llm_conn_id": self.llm_conn_id,
            "provider": self.provider,
            "step_prefix": self.step_prefix,
            "names": self.names,
            "item_fields": self.item_fields,
            "timeout_s": self.timeout_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentRun:
        from airflow_agent_provider.agent_loop.state import AgentLoop, LoopSpec

        values = dict(data)
        values["loop"] = AgentLoop.from_dict(values["loop"])
        values["spec"] = LoopSpec.from_dict(values["spec"])
        values["guard"] = GuardConfig.from_dict(values["guard"])
        return cls(**values)


__all__ = [
    "AGENT_TRIGGER",
    "AgentRun",
    "EXECUTION_MODES",
    "PROMPT_CONTEXTS",
    "AgentConfig",
    "Execution",
    "PromptContext",
    "TASK_FIELDS",
    "check_output_schema",
    "guard_identity",
    "resolve_execution",
]
