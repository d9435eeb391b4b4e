"""
Turn a validated :class:`~airflow_agent_provider.definitions.Workflow` into an Airflow DAG.

One DAG per workflow, one task group per module, one :class:`LLMAgentOperator` per agent, the
dependencies as edges, and one final ``workflow_result`` task that compiles the run result and
decides the run's state (see :mod:`.trigger_rules`). Everything here is a direct mapping of
definition fields to Airflow arguments, so a user can predict the DAG from the YAML:

==========================  =========================================
definition                  Airflow
==========================  =========================================
``name``                    ``dag_id``
``schedule``/``start_date`` ``schedule``/``start_date``
``timeout``                 ``dagrun_timeout``
``max_parallel_agents``     ``max_active_tasks`` (unset: derived from the concurrency limits, see :mod:`.pools`)
agent ``priority``          ``priority_weight`` (``weight_rule="absolute"``)
agent ``retries``           ``retries``/``retry_delay``/``retry_exponential_backoff``/``max_retry_delay``
agent ``timeout``           ``execution_timeout``
agent ``pool``              ``pool``/``pool_slots`` (else a pool derived from ``max_concurrent``)
agent ``retries``           also ``retry_policy=AgentRetryPolicy`` (permanent errors fail at once)
``rate_limits``             the shared limiter rules of every agent
budgets                     ``guard=GuardConfig`` (:mod:`.guards`): budgets, reserved before each call,
``price``/``call_retries``  and the price override, call retries, breaker, fallbacks and rate limits
``circuit_breaker``         (the same typed object on the worker and in the triggerer)
``budget_gate``             a ``CostBudgetSensor`` in front of the module or the workflow
``params``                  ``DAG(params={name: Param(default, type=..., ...)})``
``triggered_by``            ``schedule=[Asset(<producer's produces>), ...]`` (all of them)
``produces``                ``outlets=[Asset(produces)]`` of the result task (success/partial)
agent ``output_schema``     ``output_schema=`` (validated answer in ``output``)
agent ``condition``         ``condition=`` (skip before any call)
agent ``repeat_until``      ``repeat_until=``/``max_iterations=``
agent ``for_each`` list     ``LLMAgentOperator.partial(...).expand(item=[...])``
agent ``for_each`` expr     a ``ForEachItemsOperator`` ``<agent>__items`` + ``.expand(item=items.output)``
==========================  =========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Asset, TaskGroup

from airflow_agent_provider.definitions.models import default_asset_uri, resolve_dependency
from airflow_agent_provider.factory.agents import (
    EXPONENTIAL_BACKOFF_MULTIPLIER,
    ITEMS_TASK_SUFFIX,
    Shared,
    agent_operator,
    items_operator,
    upstream_aliases,
)
from airflow_agent_provider.factory.batch import add_submit_tasks, batch_groups
from airflow_agent_provider.factory.dag_args import GATE_TASK_ID, dag_params, dag_schedule, gate_sensor
from airflow_agent_provider.factory.pools import max_active_tasks
from airflow_agent_provider.operators.result import RESULT_TASK_ID, WorkflowResultOperator

if TYPE_CHECKING:
    from airflow_agent_provider.definitions import AgentSpec, Workflow


def _check_items_task_ids(workflow: Workflow) -> None:
    for module_name, module in workflow.modules.items():
        names = {a.name for a in module.agents}
        for agent in module.agents:
            if isinstance(agent.for_each, str) and agent.name + ITEMS_TASK_SUFFIX in names:
                raise ValueError(
                    f"agent {module_name}.{agent.name + ITEMS_TASK_SUFFIX} clashes with the task that computes "
                    f"the for_each items of {module_name}.{agent.name}; rename one of them"
                )


def build_dag(workflow: Workflow, produces_by_name: Mapping[str, str] | None = None) -> DAG:
    """
    Build the DAG of one workflow. Pure mapping: no I/O, no connections, safe at parse time.

    :param produces_by_name: workflow name -> its ``produces`` asset URI, for ``triggered_by``
        producers with a non-default asset (the loader passes every workflow of the folder).
    """
    _check_items_task_ids(workflow)
    ids = [workflow.agent_id(module, agent.name) for module, agent in workflow.iter_agents()]
    critical_by_id = {
        workflow.agent_id(module, agent.name): agent.critical for module, agent in workflow.iter_agents()
    }
    # Upstreams of every agent, once (``Workflow.upstream_ids`` looks the agent up by a linear scan).
    upstream_by_id = {
        workflow.agent_id(module, agent.name): [resolve_dependency(module, dep) for dep in agent.dependencies]
        for module, agent in workflow.iter_agents()
    }
    shared = Shared(workflow)
    groups = batch_groups(workflow)
    batch_of = {member: group for group in groups for member in group.members}
    batch_extras: dict[str, list[Any]] = {}  # batch agent id -> gates and items task before its submit
    source = workflow.source_path
    doc = workflow.description or f"LLM agent workflow {workflow.name}"
    if source is not None:
        doc += f"\n\nDefined in `{source.name}`."

    dag = DAG(
        dag_id=workflow.name,
        description=workflow.description or None,
        doc_md=doc,
        schedule=dag_schedule(workflow, produces_by_name),
        start_date=workflow.start_date,
        catchup=workflow.catchup,
        tags=sorted({"llm-agents", *workflow.tags}),
        default_args={"owner": workflow.owner},
        dagrun_timeout=workflow.timeout,
        max_active_tasks=max_active_tasks(workflow, other_tasks=_other_task_count(workflow)),
        params=dag_params(workflow),
    )
    tasks: dict[str, Any] = {}
    items_tasks: dict[str, str] = {}  # agent id -> the task id computing its for_each items
    gates: dict[str, list[str]] = {}  # gate task id -> the agent ids right behind it
    with dag:
        workflow_gate = gate_sensor(GATE_TASK_ID, workflow.budget_gate) if workflow.budget_gate else None
        for module_name, module in workflow.modules.items():
            with TaskGroup(group_id=module_name, tooltip=module.description or module_name):
                module_gate = gate_sensor(GATE_TASK_ID, module.budget_gate) if module.budget_gate else None
                for agent in module.agents:
                    qualified = workflow.agent_id(module_name, agent.name)
                    upstream = upstream_by_id[qualified]
                    in_module = [u for u in upstream if u.partition(".")[0] == module_name]
                    # Gates stand in front of entry agents; the rest of the module waits on those.
                    agent_gates = []
                    if module_gate is not None and not in_module:
                        agent_gates.append(module_gate)
                    if workflow_gate is not None and not upstream:
                        agent_gates.append(workflow_gate)
                    items: Any = agent.static_for_each()
                    if isinstance(agent.for_each, str):
                        items_task = items_operator(workflow, module_name, agent, upstream, critical_by_id)
                        items_tasks[qualified] = items_task.task_id
                        for gate_task in agent_gates:
                            gate_task >> items_task
                        items = items_task.output
                    tasks[qualified] = agent_operator(
                        workflow,
                        module_name,
                        agent,
                        upstream,
                        critical_by_id,
                        [g.task_id for g in agent_gates],
                        items,
                        shared,
                        batch_of.get(qualified),
                    )
                    batch_extras[qualified] = [
                        *agent_gates,
                        *([dag.get_task(items_tasks[qualified])] if qualified in items_tasks else []),
                    ]
                    for gate_task in agent_gates:
                        gate_task >> tasks[qualified]
                        gates.setdefault(gate_task.task_id, []).append(qualified)
        for qualified, task in tasks.items():
            for upstream_id in upstream_by_id[qualified]:
                tasks[upstream_id] >> task
                if qualified in items_tasks:
                    tasks[upstream_id] >> dag.get_task(items_tasks[qualified])
        add_submit_tasks(workflow, groups, tasks, upstream_by_id, batch_extras)
        result = WorkflowResultOperator(
            task_id=RESULT_TASK_ID,
            workflow=workflow.name,
            agents={
                qualified: _result_meta(module, agent, items_tasks.get(qualified))
                for (module, agent), qualified in zip(workflow.iter_agents(), ids)
            },
            allow_partial_completion=workflow.allow_partial_completion,
            cost_budget=workflow.cost_budget,
            gates=gates,
            # Emitted only when the result task succeeds: outcome success or partial, never failed.
            outlets=[Asset(workflow.produces or default_asset_uri(workflow.name))],
        )
        list(tasks.values()) >> result
    return dag


def _other_task_count(workflow: Workflow) -> int:
    """Tasks of the DAG that are not agents: the result task, budget gates and ``for_each`` item tasks."""
    gates = int(workflow.budget_gate is not None) + sum(
        m.budget_gate is not None for m in workflow.modules.values()
    )
    items = sum(isinstance(agent.for_each, str) for _, agent in workflow.iter_agents())
    return 1 + gates + items + len(batch_groups(workflow))


def _result_meta(module: str, agent: AgentSpec, items_task: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"module": module, "agent": agent.name, "critical": agent.critical}
    if agent.for_each is not None:
        meta["mapped"] = True
        if items_task:
            meta["items_task"] = items_task
        else:
            meta["items"] = agent.static_for_each()
    return meta


__all__ = [
    "EXPONENTIAL_BACKOFF_MULTIPLIER",
    "GATE_TASK_ID",
    "ITEMS_TASK_SUFFIX",
    "build_dag",
    "dag_params",
    "dag_schedule",
    "upstream_aliases",
]
