"""
Batch delivery in the DAG: which agents are submitted together, and the submit task of each group.

Agents with ``delivery: batch`` of the same provider, connection, model and *dependency layer* form
one group. The layer is the agent's depth in the dependency graph of the whole workflow (0 = no
dependencies, else one more than its deepest upstream), so two agents of one group never depend on
each other and all their upstream results exist when the group is submitted: one submit task per
group, downstream of every member's upstreams, upstream of every member.

Each member stays its own task (``Module.agent``, a :class:`BatchAgentOperator`): its result, state,
cost and retries are its own, so the run looks in the UI, the result table and the ledger as it
would with real-time delivery. Only the submit task is new: ``batch__<provider>__<model>__L<layer>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.definitions.models import resolve_dependency

if TYPE_CHECKING:
    from airflow_agent_provider.definitions import AgentSpec, Workflow

#: Suffix of the task computing an expression ``for_each`` list (the builder's ``ITEMS_TASK_SUFFIX``).
ITEMS_TASK_SUFFIX = "__items"
#: Prefix of every submit task id.
SUBMIT_TASK_PREFIX = "batch__"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def dependency_layers(workflow: Workflow) -> dict[str, int]:
    """Every agent's depth in the dependency graph (validation has ruled out cycles)."""
    upstream = {
        workflow.agent_id(module, agent.name): [resolve_dependency(module, d) for d in agent.dependencies]
        for module, agent in workflow.iter_agents()
    }
    layers: dict[str, int] = {}

    def depth(agent_id: str, trail: tuple[str, ...] = ()) -> int:
        if agent_id in layers:
            return layers[agent_id]
        if agent_id in trail:  # a cycle: validation reports it; do not recurse forever here
            return 0
        ups = [u for u in upstream.get(agent_id, []) if u in upstream]
        layers[agent_id] = 1 + max((depth(u, (*trail, agent_id)) for u in ups), default=-1)
        return layers[agent_id]

    for agent_id in upstream:
        depth(agent_id)
    return layers


@dataclass
class BatchGroup:
    """Batch agents submitted together: one provider, connection, model and dependency layer."""

    provider: str
    connection: str
    model: str
    layer: int
    #: Qualified ids ``Module.agent`` in file order.
    members: list[str] = field(default_factory=list)
    task_id: str = ""

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.provider, self.connection, self.model, self.layer)


def batch_groups(workflow: Workflow) -> list[BatchGroup]:
    """The workflow's batch groups in file order of their first member, each with a unique task id."""
    layers = dependency_layers(workflow)
    groups: dict[tuple[str, str, str, int], BatchGroup] = {}
    for module, agent in workflow.iter_agents():
        if agent.delivery != "batch":
            continue
        agent_id = workflow.agent_id(module, agent.name)
        group = BatchGroup(agent.provider, agent.connection or "", agent.model or "", layers[agent_id])
        groups.setdefault(group.key, group).members.append(agent_id)
    taken: set[str] = set()
    for group in groups.values():
        base = _UNSAFE.sub(
            "_", f"{SUBMIT_TASK_PREFIX}{group.provider}__{group.model or 'default'}__L{group.layer}"
        )
        task_id, n = base, 2
        while task_id in taken:  # the same model through two connections (accounts)
            task_id, n = f"{base}__{n}", n + 1
        taken.add(task_id)
        group.task_id = task_id
    return list(groups.values())


def group_of(groups: list[BatchGroup]) -> dict[str, BatchGroup]:
    """Agent id -> its group."""
    return {member: group for group in groups for member in group.members}


def batch_operator_kwargs(agent: AgentSpec, group: BatchGroup) -> dict[str, Any]:
    """
    What a batch agent's operator gets besides the real-time agent's arguments.

    ``execution="worker"``: the batch operator does its own deferring (to :class:`BatchTrigger`);
    starting it in the triggerer (what ``auto`` would choose for a tool-less agent) would skip the
    reading of its batch entry.
    """
    return {
        "batch_task_id": group.task_id,
        "deadline": agent.deadline.total_seconds(),
        "batch_fallback": agent.batch_fallback,
        "execution": "worker",
        "deferrable": False,
    }


def _member_spec(workflow: Workflow, member: str) -> dict[str, Any]:
    """What the submit task needs to know of a member: its task and, for ``for_each``, its items."""
    agent = workflow.get_agent(member)
    spec: dict[str, Any] = {"task_id": member}
    if isinstance(agent.for_each, str):
        spec["items_task"] = member + ITEMS_TASK_SUFFIX
    elif agent.for_each is not None:
        spec["items"] = agent.static_for_each()
    return spec


def add_submit_tasks(
    workflow: Workflow,
    groups: list[BatchGroup],
    tasks: Mapping[str, Any],
    upstream_by_id: Mapping[str, list[str]],
    extra_upstreams: Mapping[str, list[Any]],
) -> list[Any]:
    """
    Create one submit task per group and wire it: member upstreams (and their ``for_each`` item
    tasks and budget gates, ``extra_upstreams``) >> submit >> members. Called inside the DAG context.
    """
    from airflow_agent_provider.operators.batch_submit import BatchSubmitOperator

    created = []
    for group in groups:
        agents = [workflow.get_agent(member) for member in group.members]
        deadline = min(agent.deadline for agent in agents)
        submit = BatchSubmitOperator(
            task_id=group.task_id,
            doc_md=(
                f"Submits {len(group.members)} agent request(s) to the {group.provider} batch API "
                f"(model {group.model or 'default'}, layer {group.layer}) and records their batch ids."
            ),
            members=[_member_spec(workflow, member) for member in group.members],
            provider=group.provider,
            llm_conn_id=group.connection or None,
            deadline=deadline.total_seconds(),
            retries=max(agent.retries.attempts for agent in agents),
            retry_delay=min(agent.retries.base_delay for agent in agents),
            priority_weight=max(agent.priority for agent in agents),
            weight_rule="absolute",
        )
        for member in group.members:
            for upstream in upstream_by_id[member]:
                tasks[upstream] >> submit
            for extra in extra_upstreams.get(member, []):
                extra >> submit
            submit >> tasks[member]
        created.append(submit)
    return created


__all__ = [
    "SUBMIT_TASK_PREFIX",
    "BatchGroup",
    "add_submit_tasks",
    "batch_groups",
    "batch_operator_kwargs",
    "dependency_layers",
    "group_of",
]
