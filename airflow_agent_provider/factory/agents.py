"""
One agent's task from its definition: the ``LLMAgentOperator`` arguments (or its mapped form for
``for_each``), the task computing an expression ``for_each``, and the prompt's upstream aliases.

This runs once per agent at every DAG parse (a 500-agent workflow is parsed at every task start),
so what agents of one workflow share (guards, limit rules, resolved schemas) is built once per
workflow in :class:`Shared`, and each agent's task is a direct mapping of its fields.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.factory.batch import BatchGroup, batch_operator_kwargs
from airflow_agent_provider.factory.guards import WorkflowGuards
from airflow_agent_provider.factory.pools import agent_pool
from airflow_agent_provider.factory.trigger_rules import gate_for
from airflow_agent_provider.operators.agent import LLMAgentOperator
from airflow_agent_provider.operators.control_flow import ForEachItemsOperator
from airflow_agent_provider.operators.retry_policy import AgentRetryPolicy

if TYPE_CHECKING:
    from airflow_agent_provider.definitions import AgentSpec, Workflow

#: Suffix of the task that computes an expression ``for_each`` list: ``<agent>__items``.
ITEMS_TASK_SUFFIX = "__items"

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
    """
    The task's retries; their pacing only when there are retries to pace. Airflow leaves a field
    at its default out of the serialized task, and the triggerer deserializes the whole DAG once
    per triggerer-only agent: three timedeltas are a fifth of a 500-agent DAG's deserialization.
    """
    retries = agent.retries
    pacing: dict[str, Any] = {}
    if retries.attempts:
        pacing = {
            "retry_delay": retries.base_delay,
            "retry_exponential_backoff": EXPONENTIAL_BACKOFF_MULTIPLIER if retries.exponential else 0,
            "max_retry_delay": retries.max_delay,
        }
    return {
        "retries": retries.attempts,
        **pacing,
        "retry_policy": AgentRetryPolicy(
            base_delay=retries.base_delay,
            max_delay=retries.max_delay,
            exponential=retries.exponential,
            jitter=retries.jitter,
        ),
    }


@dataclass
class Shared:
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


def agent_operator(
    workflow: Workflow,
    module: str,
    agent: AgentSpec,
    upstream_ids: list[str],
    critical_by_id: dict[str, bool],
    gate_ids: list[str],
    items: Any = None,
    shared: Shared | None = None,
    batch: BatchGroup | None = None,
) -> Any:
    """The agent's task: an ``LLMAgentOperator``, or its mapped form for ``for_each`` (``items``)."""
    shared = shared or Shared(workflow)
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


def items_operator(
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


__all__ = [
    "EXPONENTIAL_BACKOFF_MULTIPLIER",
    "ITEMS_TASK_SUFFIX",
    "Shared",
    "agent_operator",
    "items_operator",
    "upstream_aliases",
]
