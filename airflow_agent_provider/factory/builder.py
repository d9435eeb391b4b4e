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

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import DAG, Asset, Param, TaskGroup

from airflow_agent_provider.definitions import (
    AgentSpec,
    BudgetGateSpec,
    Workflow,
)
from airflow_agent_provider.definitions.models import default_asset_uri, resolve_dependency
from airflow_agent_provider.factory.batch import (
    BatchGroup,
    add_submit_tasks,
    batch_groups,
    batch_operator_kwargs,
)
from airflow_agent_provider.factory.guards import WorkflowGuards
from airflow_agent_provider.factory.pools import agent_pool, max_active_tasks
from airflow_agent_provider.factory.trigger_rules import gate_for
from airflow_agent_provider.operators.agent import LLMAgentOperator
from airflow_agent_provider.operators.control_flow import ForEachItemsOperator
from airflow_agent_provider.operators.result import (
    RESULT_TASK_ID,
    WorkflowResultOperator,
)
from airflow_agent_provider.operators.retry_policy import AgentRetryPolicy
from airflow_agent_provider.sensors.budget import CostBudgetSensor

GATE_TASK_ID = "budget_gate"
#: Suffix of the task that computes an expression ``for_each`` list: ``<agent>__items``.
ITEMS_TASK_SUFFIX = "__items"
_GATE_SCOPES = {"run": "run", "day": "workflow_day", "month": "workflow_month"}

#: Multiplier of Airflow's exponential retry backoff when a definition asks for ``exponential: true``.
EXPONENTIAL_BACKOFF_MULTIPLIER = 2.0


def upstream_aliases(workflow: Workflow, module: str, agent: AgentSpec) -> dict[str, str]:
    """
    Names under which an agent's prompt sees its upstream results.

    Every upstream is reachable by its qualified id (``HR.payroll_summary``) and by its plain name
    (``payroll_summary``), as validation allows both. When two upstreams share a plain name, the
    same-module one (written without a module) keeps it and the other needs its qualified id.
    """
    aliases: dict[str, str] = {}
    for dep in agent.dependencies:
        qualified = dep if "." in dep else workflow.agent_id(module, dep)
        aliases[qualified] = qualified
        aliases[dep] = qualified
    cross = [dep for dep in agent.dependencies if "." in dep]
    plain_names = [dep.partition(".")[2] for dep in cross]
    for dep, plain in zip(cross, plain_names):
        if plain_names.count(plain) == 1:
            aliases.setdefault(plain, dep)
    return aliases


def _retry_kwargs(agent: AgentSpec) -> dict[str, Any]:
    retries = agent.retries
    return {
        "retries": retries.attempts,
        "retry_delay": retries.base_delay,
        "retry_exponential_backoff": EXPONENTIAL_BACKOFF_MULTIPLIER if retries.exponential else 0,
        "max_retry_delay": retries.max_delay,
        "retry_policy": AgentRetryPolicy(
            base_delay=retries.base_delay,
            max_delay=retries.max_delay,
            exponential=retries.exponential,
            jitter=retries.jitter,
        ),
    }


@dataclass
class _Shared:
    """
    What every agent of one workflow gets the same of, computed once per workflow, not per agent.

    A 500-agent workflow otherwise rebuilds the same limiter rules, budgets and output schemas 500
    times at every DAG parse (and a parse happens at every task start).
    """

    workflow: Workflow
    guards: WorkflowGuards = field(init=False)
    _schemas: dict[str, dict[str, Any] | None] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.guards = WorkflowGuards(self.workflow)

    def output_schema(self, agent: AgentSpec) -> dict[str, Any] | None:
        """The agent's resolved output schema; resolved once per distinct schema, a copy per agent."""
        value = agent.output_schema
        if value is None:
            return None
        key = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        if key not in self._schemas:
            self._schemas[key] = agent.resolved_output_schema()
        return copy.deepcopy(self._schemas[key])


def _gate_sensor(task_id: str, gate: BudgetGateSpec) -> CostBudgetSensor:
    """A budget gate: a closed gate skips what is behind it (``soft_fail``), it never fails the run."""
    return CostBudgetSensor(
        task_id=task_id,
        max_spend_usd=gate.max_spend,
        scope=_GATE_SCOPES[gate.scope],
        wait=gate.wait,
        soft_fail=True,
        mode="reschedule" if gate.wait else "poke",
        timeout=gate.timeout,
        poke_interval=gate.poke_interval,
        retries=0,
    )


def dag_params(workflow: Workflow) -> dict[str, Param]:
    """
    ``Workflow.params`` as Airflow Params: Airflow validates a triggered run's ``conf`` against them
    (type, enum, bounds) and fills in defaults; ``{{ params.x }}`` and expressions read the result.
    A param without a default must be given when the run is triggered.
    """
    params = {}
    for name, spec in workflow.params.items():
        extra = {"description": spec.description} if spec.description else {}
        if spec.has_default:
            params[name] = Param(spec.default, **spec.json_schema(), **extra)
        else:
            params[name] = Param(**spec.json_schema(), **extra)
    return params


def dag_schedule(workflow: Workflow, produces_by_name: Mapping[str, str] | None = None) -> Any:
    """
    The cron/preset schedule, or for ``triggered_by`` the producers' assets.

    A list of assets means Airflow queues a run once *every* listed producer has emitted an event
    since this workflow's last run. A producer's asset is its ``produces`` when known (the loader
    passes every workflow of the folder), else the default ``agent-workflow://<name>``.
    """
    if not workflow.triggered_by:
        return workflow.schedule
    known = produces_by_name or {}
    return [Asset(known.get(name) or default_asset_uri(name)) for name in workflow.triggered_by]


def _agent_operator(
    workflow: Workflow,
    module: str,
    agent: AgentSpec,
    upstream_ids: list[str],
    critical_by_id: dict[str, bool],
    gate_ids: list[str],
    items: Any = None,
    shared: _Shared | None = None,
    batch: BatchGroup | None = None,
) -> Any:
    """The agent's task: an ``LLMAgentOperator``, or its mapped form for ``for_each`` (``items``)."""
    shared = shared or _Shared(workflow)
    gate = gate_for(upstream_ids, critical_by_id, workflow.allow_partial_completion)
    pool_kwargs: dict[str, Any] = {"pool_slots": agent.pool_slots}
    derived = agent_pool(workflow, agent)
    if agent.pool:
        pool_kwargs["pool"] = agent.pool
    elif derived is not None:
        pool_kwargs["pool"] = derived[0]
    kwargs: dict[str, Any] = dict(
        task_id=agent.name,
        doc_md=agent.description or None,
        prompt=agent.prompt,
        llm_conn_id=agent.connection,
        provider=agent.provider,
        model=agent.model,
        system_prompt=agent.system_prompt,
        temperature=agent.temperature,
        max_tokens=agent.max_tokens,
        tools={name: workflow.tools[name] for name in agent.tools},
        max_rounds=agent.max_rounds,
        upstream_tasks=upstream_aliases(workflow, module, agent),
        # A closed budget gate leaves no result: agents behind it must not run (also with all_done).
        critical_upstreams=[
            *gate.critical_upstreams,
            *(gate_ids if gate.trigger_rule != "all_success" else []),
        ],
        guard=shared.guards.for_agent(module, agent),
        request_timeout=agent.request_timeout.total_seconds() if agent.request_timeout else None,
        output_schema=shared.output_schema(agent),
        condition=agent.condition,
        repeat_until=agent.repeat_until,
        max_iterations=agent.max_iterations,
        agent_meta={
            "workflow": workflow.name,
            "module": module,
            "agent": agent.name,
            "critical": agent.critical,
        },
        deferrable=agent.deferrable,
        execution=agent.execution,  # auto: tool-less agents start and end in the triggerer
        prompt_context="workflow",  # workflow files get the narrow prompt context (no conn/var/ti/macros)
        trigger_rule=gate.trigger_rule,
        priority_weight=agent.priority,
        weight_rule="absolute",
        execution_timeout=agent.timeout,
        **_retry_kwargs(agent),
        **pool_kwargs,
    )
    operator: type[LLMAgentOperator] = LLMAgentOperator
    if batch is not None:  # delivery: batch (see factory/batch.py)
        from airflow_agent_provider.operators.batch import BatchAgentOperator

        kwargs.update(batch_operator_kwargs(agent, batch))
        operator = BatchAgentOperator
    if items is None:
        return operator(**kwargs)
    return operator.partial(**kwargs).expand(item=items)


def _items_operator(
    workflow: Workflow,
    module: str,
    agent: AgentSpec,
    upstream_ids: list[str],
    critical_by_id: dict[str, bool],
) -> ForEachItemsOperator:
    """The task that evaluates an expression ``for_each`` into the list the agent expands over."""
    gate = gate_for(upstream_ids, critical_by_id, workflow.allow_partial_completion)
    return ForEachItemsOperator(
        task_id=agent.name + ITEMS_TASK_SUFFIX,
        doc_md=f"Computes the items of `{agent.name}`: `for_each: {agent.for_each}`",
        expression=str(agent.for_each),
        upstream_tasks=upstream_aliases(workflow, module, agent),
        agent_task_id=workflow.agent_id(module, agent.name),
        trigger_rule=gate.trigger_rule,
        priority_weight=agent.priority,
        weight_rule="absolute",
    )


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
    shared = _Shared(workflow)
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
        workflow_gate = _gate_sensor(GATE_TASK_ID, workflow.budget_gate) if workflow.budget_gate else None
        for module_name, module in workflow.modules.items():
            with TaskGroup(group_id=module_name, tooltip=module.description or module_name):
                module_gate = _gate_sensor(GATE_TASK_ID, module.budget_gate) if module.budget_gate else None
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
                        items_task = _items_operator(workflow, module_name, agent, upstream, critical_by_id)
                        items_tasks[qualified] = items_task.task_id
                        for gate_task in agent_gates:
                            gate_task >> items_task
                        items = items_task.output
                    tasks[qualified] = _agent_operator(
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
            for upstream in upstream_by_id[qualified]:
                tasks[upstream] >> task
                if qualified in items_tasks:
                    tasks[upstream] >> dag.get_task(items_tasks[qualified])
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
