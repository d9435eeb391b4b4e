"""
What the result task collects from Airflow about a run, as typed records (the input of
:func:`airflow_agent_provider.results.compile.compile_result`).

The collect step (``operators/result.py``) is the only part that talks to Airflow: it turns task
states, durations and XComs into these records. Everything after that is pure and tested without
a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from airflow_agent_provider.results.agent import AgentResult


class AgentMeta(BaseModel):
    """What the factory tells the result task about one agent (``WorkflowResultOperator.agents``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    module: str
    agent: str
    critical: bool
    #: A ``for_each`` agent: a mapped task, one instance per item.
    mapped: bool = False
    #: The static ``for_each`` list, when the definition gives one.
    items: list[Any] | None = None
    #: The task that computed the ``for_each`` list, when an expression gives it.
    items_task: str | None = None


@dataclass(frozen=True)
class InstanceRecord:
    """One instance (map index) of a mapped agent: its state, run time and result."""

    map_index: int
    state: str | None
    duration_s: float | None = None
    result: AgentResult | None = None


@dataclass(frozen=True)
class AgentRecord:
    """
    One agent's task: the state, run time and result of its unexpanded task (map index -1, which
    a mapped agent only has when it never expanded), and a mapped agent's instances.
    """

    meta: AgentMeta
    state: str | None
    result: AgentResult | None = None
    duration_s: float | None = None
    instances: list[InstanceRecord] = field(default_factory=list)


@dataclass(frozen=True)
class RunRecords:
    """Everything the compile step needs about one run."""

    workflow: str
    dag_id: str
    run_id: str
    agents: dict[str, AgentRecord]
    allow_partial_completion: bool = False
    cost_budget: float | None = None
    #: Budget gate task id -> the agent task ids right behind it.
    gates: dict[str, list[str]] = field(default_factory=dict)
    #: Gate task id -> its state.
    gate_states: dict[str, str | None] = field(default_factory=dict)
    #: Agent task id -> its upstream task ids.
    upstream: dict[str, list[str]] = field(default_factory=dict)


__all__ = ["AgentMeta", "AgentRecord", "InstanceRecord", "RunRecords"]
