"""Turn a validated :class:`~airflow_agent_provider.definitions.Workflow` into an Airflow DAG.

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
``max_parallel_agents``     ``max_active_tasks``
agent ``priority``          ``priority_weight`` (``weight_rule="absolute"``)
agent ``retries``           ``retries``/``retry_delay``/``retry_exponential_backoff``/``max_retry_delay``
agent ``timeout``           ``execution_timeout``
agent ``pool``              ``pool``/``pool_slots`` (else a pool derived from ``max_concurrent``)
agent ``retries``           also ``retry_policy=AgentRetryPolicy`` (permanent errors fail at once)
``rate_limits``             the shared limiter rules of every agent
budgets                     ``cost_limit`` / module and workflow budgets, reserved before each call
``budget_gate``             a ``CostBudgetSensor`` in front of the module or the workflow
==========================  =========================================
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, TaskGroup

from airflow_agent_provider.definitions import AgentSpec, BudgetGateSpec, ModuleSpec, Workflow
from airflow_agent_provider.factory.pools import agent_pool
from airflow_agent_provider.factory.trigger_rules import gate_for
from airflow_agent_provider.operators.agent import LLMAgentOperator
from airflow_agent_provider.operators.result import RESULT_TASK_ID, WorkflowResultOperator
from airflow_agent_provider.operators.retry_policy import AgentRetryPolicy
from airflow_agent_provider.sensors.budget import CostBudgetSensor

GATE_TASK_ID = "budget_gate"
_GATE_SCOPES = {"run": "run", "day": "workflow_day", "month": "workflow_month"}

#: Multiplier of Airflow's exponential retry backoff when a definition asks for ``exponential: true``.
EXPONENTIAL_BACKOFF_MULTIPLIER = 2.0


def upstream_aliases(workflow: Workflow, module: str, agent: AgentSpec) -> dict[str, str]:
    """
    Names under which an agent's prompt sees its upstream results.

    Every upstream is reachable by its qualified id (``HR.payroll_summary``); a same-module upstream
    also by its plain name (``payroll_summary``), which is how the definition refers to it.
    """
    aliases: dict[str, str] = {}
    for dep in agent.dependencies:
        qualified = dep if "." in dep else workflow.agent_id(module, dep)
        aliases[qualified] = qualified
        aliases[dep] = qualified
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


def rate_limit_rules(workflow: Workflow) -> list[dict[str, Any]]:
    """The workflow's ``rate_limits`` as limiter rules; matching happens per call (fallbacks too)."""
    rules = []
    for key, spec in workflow.rate_limits.items():
        provider, _, model = key.partition("/")
        rules.append(
            {"key": key, "limits": spec.model_dump(exclude_none=True), "provider": provider, "model": model or None}
        )
    return rules


def _budget_kwargs(workflow: Workflow, module: ModuleSpec) -> dict[str, float | None]:
    return {
        "module_cost_budget": module.cost_budget,
        "run_cost_budget": workflow.cost_budget,
        "daily_budget": workflow.daily_budget,
        "monthly_budget": workflow.monthly_budget,
    }


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


def _agent_operator(
    workflow: Workflow,
    module: str,
    agent: AgentSpec,
    upstream_ids: list[str],
    critical_by_id: dict[str, bool],
    gate_ids: list[str],
) -> LLMAgentOperator:
    gate = gate_for(upstream_ids, critical_by_id, workflow.allow_partial_completion)
    pool_kwargs: dict[str, Any] = {"pool_slots": agent.pool_slots}
    derived = agent_pool(workflow, agent)
    if agent.pool:
        pool_kwargs["pool"] = agent.pool
    elif derived is not None:
        pool_kwargs["pool"] = derived[0]
    return LLMAgentOperator(
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
        critical_upstreams=[*gate.critical_upstreams, *(gate_ids if gate.trigger_rule != "all_success" else [])],
        price_override=agent.price.model_dump() if agent.price else None,
        cost_limit=agent.cost_limit,
        budget=_budget_kwargs(workflow, workflow.modules[module]),
        rate_limits=rate_limit_rules(workflow),
        call_retries=agent.call_retries.to_engine(),
        circuit_breaker=workflow.circuit_breaker.to_engine() or False,
        fallbacks=[f.to_engine() for f in agent.fallbacks],
        request_timeout=agent.request_timeout.total_seconds() if agent.request_timeout else None,
        agent_meta={
            "workflow": workflow.name,
            "module": module,
            "agent": agent.name,
            "critical": agent.critical,
        },
        deferrable=agent.deferrable,
        trigger_rule=gate.trigger_rule,
        priority_weight=agent.priority,
        weight_rule="absolute",
        execution_timeout=agent.timeout,
        **_retry_kwargs(agent),
        **pool_kwargs,
    )


def build_dag(workflow: Workflow) -> DAG:
    """Build the DAG of one workflow. Pure mapping: no I/O, no connections, safe at parse time."""
    ids = [workflow.agent_id(module, agent.name) for module, agent in workflow.iter_agents()]
    critical_by_id = {
        workflow.agent_id(module, agent.name): agent.critical for module, agent in workflow.iter_agents()
    }
    source = workflow.source_path
    doc = workflow.description or f"LLM agent workflow {workflow.name}"
    if source is not None:
        doc += f"\n\nDefined in `{source.name}`."

    dag = DAG(
        dag_id=workflow.name,
        description=workflow.description or None,
        doc_md=doc,
        schedule=workflow.schedule,
        start_date=workflow.start_date,
        catchup=workflow.catchup,
        tags=sorted({"llm-agents", *workflow.tags}),
        default_args={"owner": workflow.owner},
        dagrun_timeout=workflow.timeout,
        max_active_tasks=workflow.max_parallel_agents or 16,
    )
    tasks: dict[str, LLMAgentOperator] = {}
    gates: dict[str, list[str]] = {}  # gate task id -> the agent ids right behind it
    with dag:
        workflow_gate = _gate_sensor(GATE_TASK_ID, workflow.budget_gate) if workflow.budget_gate else None
        for module_name, module in workflow.modules.items():
            with TaskGroup(group_id=module_name, tooltip=module.description or module_name):
                module_gate = _gate_sensor(GATE_TASK_ID, module.budget_gate) if module.budget_gate else None
                for agent in module.agents:
                    qualified = workflow.agent_id(module_name, agent.name)
                    upstream = workflow.upstream_ids(qualified)
                    in_module = [u for u in upstream if u.partition(".")[0] == module_name]
                    # Gates stand in front of entry agents; the rest of the module waits on those.
                    agent_gates = []
                    if module_gate is not None and not in_module:
                        agent_gates.append(module_gate)
                    if workflow_gate is not None and not upstream:
                        agent_gates.append(workflow_gate)
                    tasks[qualified] = _agent_operator(
                        workflow, module_name, agent, upstream, critical_by_id, [g.task_id for g in agent_gates]
                    )
                    for gate_task in agent_gates:
                        gate_task >> tasks[qualified]
                        gates.setdefault(gate_task.task_id, []).append(qualified)
        for qualified, task in tasks.items():
            for upstream in workflow.upstream_ids(qualified):
                tasks[upstream] >> task
        result = WorkflowResultOperator(
            task_id=RESULT_TASK_ID,
            workflow=workflow.name,
            agents={
                qualified: {
                    "module": module,
                    "agent": agent.name,
                    "critical": agent.critical,
                }
                for (module, agent), qualified in zip(workflow.iter_agents(), ids)
            },
            allow_partial_completion=workflow.allow_partial_completion,
            cost_budget=workflow.cost_budget,
            gates=gates,
        )
        list(tasks.values()) >> result
    return dag
