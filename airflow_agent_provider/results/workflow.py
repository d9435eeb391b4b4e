"""
The workflow result: the ``return_value`` XCom of a run's ``workflow_result`` task.

It is compiled from the run's task states and agent results (:mod:`.compile`), written by the
result task, printed by ``airflow-agents result`` (:mod:`.format`) and summarised into the run
record the Operations view lists (:mod:`.summary`).

Version history (``version``; fields are only ever added within a version, never renamed or
removed, so a reader of version 1 reads every version-1 result):

* **1** — the first shape; ``gated``, ``duration_s``, ``stopped``, ``iterations``, ``mapped`` and
  ``items`` per agent were added later within it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from airflow_agent_provider.results._versioned import versioned_record
from airflow_agent_provider.results.agent import TokenUsage

WORKFLOW_RESULT_VERSION = 1
READABLE_VERSIONS = (1,)

Outcome = Literal["success", "partial", "failed"]


class ItemEntry(BaseModel):
    """One item (map index) of a mapped (``for_each``) agent."""

    model_config = ConfigDict(extra="allow")

    map_index: int = Field(description="the instance's map index (item order)")
    item: Any = Field(None, description="the item this instance ran for")
    status: str = Field(description="the instance's Airflow state (`not_run` when it has none)")
    reason: str | None = Field(None, description="why it did not succeed (null on success)")
    usage: TokenUsage = Field(default_factory=TokenUsage, description="its tokens")
    cost_usd: float | None = Field(None, description="its USD cost; null when unknown or not run")
    latency_s: float | None = Field(None, description="seconds in model calls")
    duration_s: float | None = Field(None, description="the instance's run time from Airflow")
    output: Any = Field(None, description="its answer (null unless it succeeded)")


class AgentEntry(BaseModel):
    """One agent of the run, as the result reports it."""

    model_config = ConfigDict(extra="allow")

    module: str = Field(description="the module the agent belongs to")
    agent: str = Field(description="the agent's name within its module")
    critical: bool = Field(description="whether the run needs it to succeed (`critical`)")
    status: str = Field(
        description="`success`, `failed`, `skipped`, `upstream_failed`, `removed` or `not_run`"
    )
    gated: bool = Field(False, description="held back by a closed budget gate (directly or upstream)")
    reason: str | None = Field(
        None,
        description="why it did not succeed: its error, its skip reason, the upstream it followed "
        "(`not run: upstream X was skipped (...)`) or the budget gate; null on success",
    )
    provider: str | None = Field(None, description="the provider it ran on")
    model: str | None = Field(None, description="the model it ran on")
    usage: TokenUsage = Field(default_factory=TokenUsage, description="its tokens (summed over items)")
    cost_usd: float | None = Field(None, description="its USD cost (summed over items); null when unknown")
    cost_known: bool = Field(False, description="whether its cost is known")
    rounds: int | None = Field(None, description="model calls (summed over items)")
    latency_s: float | None = Field(None, description="seconds in model calls (summed over items)")
    output: Any = Field(
        None, description="its answer; for a mapped agent the list of item outputs in item order"
    )
    duration_s: float | None = Field(
        None, description="run time from Airflow (summed over items); null when not recorded"
    )
    stopped: str | None = Field(None, description="`max_rounds` or `max_iterations` when a cap ended it")
    iterations: int | None = Field(None, description="`repeat_until` iterations run")
    mapped: bool = Field(False, description="whether it is a `for_each` agent")
    items: list[ItemEntry] | None = Field(
        None, description="mapped agents: one entry per item (see the item table), else null"
    )


class ModuleTotals(BaseModel):
    """One module's agents and spend."""

    agents: int = Field(0, description="agents in the module")
    succeeded: int = Field(0, description="of which succeeded")
    usage: TokenUsage = Field(default_factory=TokenUsage, description="their tokens")
    cost_usd: float = Field(0.0, description="their known USD cost")


class RunTotals(BaseModel):
    """The run's tokens and spend."""

    usage: TokenUsage = Field(default_factory=TokenUsage, description="tokens of every agent")
    cost_usd: float = Field(0.0, description="the known USD cost of every agent")
    cost_complete: bool = Field(True, description="false when a successful agent's cost is unknown")


class WorkflowResult(BaseModel):
    """The result of one workflow run (see the module docstring)."""

    model_config = ConfigDict(extra="allow")

    version: int = Field(WORKFLOW_RESULT_VERSION, description="version of this record")
    workflow: str = Field(description="the workflow's name")
    dag_id: str = Field(description="the DAG id")
    run_id: str = Field(description="the run id")
    outcome: Outcome = Field(
        description="`success`, `partial` (only optional or gated agents missed) or `failed`"
    )
    allow_partial_completion: bool = Field(False, description="the workflow's setting")
    agents: dict[str, AgentEntry] = Field(
        default_factory=dict, description="task id (`Module.agent`) -> the agent (see the agent table)"
    )
    modules: dict[str, ModuleTotals] = Field(
        default_factory=dict, description="module -> `{agents, succeeded, usage, cost_usd}`"
    )
    totals: RunTotals = Field(
        default_factory=RunTotals, description="`{usage, cost_usd, cost_complete}` of the run"
    )
    cost_budget: float | None = Field(None, description="the run budget in USD, null without one")
    gates: dict[str, str | None] = Field(
        default_factory=dict, description="budget gate task id -> its state (`success` is open)"
    )

    def to_dict(self) -> dict[str, Any]:
        """The XCom form (a JSON-safe dict)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_xcom(cls, value: Any) -> WorkflowResult | None:
        """A stored result (a dict, or its JSON text); None for no value; ``ValueError`` otherwise."""
        if isinstance(value, (str, bytes)):
            value = json.loads(value)
        record = versioned_record(value, "a workflow result", READABLE_VERSIONS)
        return None if record is None else cls.model_validate(record)


__all__ = [
    "WORKFLOW_RESULT_VERSION",
    "AgentEntry",
    "ItemEntry",
    "ModuleTotals",
    "Outcome",
    "RunTotals",
    "WorkflowResult",
]
