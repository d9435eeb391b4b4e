"""
What an agent task costs in the serialized DAG, and that its settings survive Airflow's serializer.

A triggerer-only agent carries its ``AgentConfig`` (with its ``GuardConfig``) in
``start_trigger_args.trigger_kwargs``; 500 agents are stored per DAG version, and the triggerer
deserializes the whole DAG once per such task, so only the fields that differ from their defaults
are written, and none the serialized task already carries (its templated fields, task id, timeout,
the guard's ledger identity, and the agent metadata its identity implies): the trigger completes
them from the task the triggerer rebuilt.
A worker agent carries no trigger kwargs at all.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from airflow.serialization.serialized_objects import BaseSerialization, DagSerialization

from airflow_agent_provider.agent_loop.config import (
    AGENT_TRIGGER,
    META_DERIVED,
    TASK_FIELDS,
    AgentConfig,
    derived_meta,
)
from airflow_agent_provider.definitions import parse_workflow
from airflow_agent_provider.factory import build_dag
from airflow_agent_provider.guard.config import GuardConfig

WORKFLOW = """
name: serialized_probe
cost_budget: 50.0
rate_limits:
  openai: {requests_per_minute: 600, max_concurrent: 20}
defaults:
  provider: openai
  model: gpt-5-mini
  max_tokens: 512
  retries: {attempts: 2, base_delay: 5s}
modules:
  M0:
    agents:
      - name: on_worker
        prompt: Check item 1 in one line.
      - name: in_triggerer
        prompt: "Check {{ params.region }} in one line."
        system_prompt: Be brief.
        execution: triggerer
        cost_limit: 0.5
        temperature: 0.2
        output_schema: {type: object, properties: {ok: {type: boolean}}}
        fallbacks: [{provider: anthropic, model: claude-haiku-4-5}]
        dependencies: [on_worker]
params:
  region: {type: string, default: EU}
"""


def _non_defaults(instance) -> set[str]:
    """The fields of a dataclass instance whose value differs from the field's default."""
    names = set()
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            names.add(f.name)
            continue
        if value != default:
            names.add(f.name)
    return names


@pytest.fixture(scope="module")
def serialized():
    dag = build_dag(parse_workflow(WORKFLOW))
    data = DagSerialization.to_dict(dag)
    return dag, data, DagSerialization.from_dict(json.loads(json.dumps(data)))


def _task_json(data, task_id: str) -> dict:
    (task,) = [t["__var"] for t in data["dag"]["tasks"] if t["__var"]["task_id"] == task_id]
    return task


def test_a_triggerer_agent_round_trips_its_config_through_the_serializer(serialized):
    dag, _, restored = serialized
    op = dag.get_task("M0.in_triggerer")
    args = restored.get_task("M0.in_triggerer").start_trigger_args
    assert args.trigger_cls == AGENT_TRIGGER
    assert args.next_method == "execute_complete"
    # Kept encoded in the deserialized DAG; Airflow's Trigger row decodes them the same way.
    kwargs = BaseSerialization.deserialize(args.trigger_kwargs)
    assert set(kwargs) == {"start"}
    config = AgentConfig.from_start_kwargs(kwargs["start"], restored.get_task("M0.in_triggerer"))
    assert config == op.agent_config()
    assert config.guard == op.guard
    assert config.guard.budgets.agent_cost_limit == 0.5
    assert [f.model for f in config.guard.fallbacks] == ["claude-haiku-4-5"]
    assert config.output_schema == {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    assert config.prompt == "Check {{ params.region }} in one line."  # unrendered: the triggerer renders it


def test_only_non_default_fields_are_serialized(serialized):
    dag, data, _ = serialized
    op = dag.get_task("M0.in_triggerer")
    stored = json.loads(
        _task_json(data, "M0.in_triggerer")["start_trigger_args"]["trigger_kwargs"]["__var"]["start"]
    )
    # agent_meta is what the task's identity implies (workflow = DAG id, module = task group, ...)
    assert op.agent_config().agent_meta == derived_meta(op)
    assert stored.pop(META_DERIVED) is True
    assert set(stored) == _non_defaults(op.agent_config()) - set(TASK_FIELDS) - {"agent_meta"}
    guard = stored["guard"]
    assert set(guard) == _non_defaults(op.guard) - {"module", "agent"}
    assert set(guard) < {f.name for f in dataclasses.fields(GuardConfig)}
    budgets = guard["budgets"]
    assert set(budgets) == _non_defaults(op.guard.budgets) == {"agent_cost_limit", "run_cost_budget"}


def test_a_worker_agent_carries_no_trigger_kwargs(serialized):
    dag, data, restored = serialized
    task = _task_json(data, "M0.on_worker")
    assert "start_trigger_args" not in task
    assert "start_from_trigger" not in task
    assert restored.get_task("M0.on_worker").start_trigger_args is None
    assert dag.get_task("M0.on_worker").execution_mode == "worker"


def test_serialized_size_per_agent_task_stays_small(serialized):
    """About 0.7 KB for a worker agent and 1.6 KB for this triggerer-only one (2 KB before the start kwargs)."""
    _, data, _ = serialized
    worker = len(json.dumps(_task_json(data, "M0.on_worker")))
    triggerer = len(json.dumps(_task_json(data, "M0.in_triggerer")))
    assert worker < 1_000
    assert triggerer < 2_000


def test_the_prompt_is_serialized_once_per_triggerer_agent(serialized):
    """The templated fields are the task's; the start kwargs do not repeat them."""
    _, data, _ = serialized
    task = json.dumps(_task_json(data, "M0.in_triggerer"))
    assert task.count("Check {{ params.region }} in one line.") == 1
    assert task.count("Be brief.") == 1


def test_agent_metadata_the_task_does_not_imply_still_travels():
    """A workflow whose DAG id is not its name (or metadata with more keys) keeps it in the start kwargs."""
    from airflow.sdk import DAG, TaskGroup

    from airflow_agent_provider.operators.agent import LLMAgentOperator

    def rebuilt(op):
        """As the triggerer rebuilds it (create_runtime_ti): from the whole serialized DAG."""
        data = json.loads(json.dumps(DagSerialization.to_dict(dag)))
        return DagSerialization.from_dict(data).get_task(op.task_id)

    meta = {"workflow": "payroll", "module": "HR", "agent": "check", "critical": True}
    with DAG("payroll_eu", schedule=None) as dag, TaskGroup("HR"):
        renamed = LLMAgentOperator(task_id="check", prompt="p", agent_meta=meta, execution="triggerer")
        extra = LLMAgentOperator(
            task_id="extra",
            prompt="p",
            agent_meta={"workflow": "payroll_eu", "module": "HR", "agent": "extra", "critical": True, "x": 1},
            execution="triggerer",
        )
    stored = json.loads(renamed.start_trigger_args.trigger_kwargs["start"])
    assert stored["agent_meta"] == meta
    assert META_DERIVED not in stored
    assert AgentConfig.from_start_kwargs(
        renamed.start_trigger_args.trigger_kwargs["start"], rebuilt(renamed)
    ) == (renamed.agent_config())
    stored = json.loads(extra.start_trigger_args.trigger_kwargs["start"])
    assert stored["agent_meta"] == {"x": 1}
    assert stored[META_DERIVED] is True
    config = AgentConfig.from_start_kwargs(extra.start_trigger_args.trigger_kwargs["start"], rebuilt(extra))
    assert config == extra.agent_config()
    assert list(config.agent_meta) == ["workflow", "module", "agent", "critical", "x"]


def test_derived_metadata_needs_a_task_with_a_dag_and_a_task_group():
    from airflow_agent_provider.operators.agent import LLMAgentOperator

    loose = LLMAgentOperator(task_id="loose", prompt="p", execution="triggerer")
    assert derived_meta(loose) == {}
    assert META_DERIVED not in json.loads(loose.start_trigger_args.trigger_kwargs["start"])
    with pytest.raises(ValueError, match="no DAG or task group"):
        AgentConfig.from_start_kwargs(json.dumps({META_DERIVED: True}), loose)
