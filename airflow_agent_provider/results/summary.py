"""
The per-agent summary a run record keeps (``RunRecord.agents``), read by the Operations view.

A projection of the workflow result's agent entry plus, from the agent's own result, who answered
and which fallbacks did. It never holds an agent's output: outputs can be large and hold business
data, and the Operations view is for people who answer for the bill, not for the content. Stored
records may be older or partial, so every field has a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from airflow_agent_provider.results.agent import AgentResult, TokenUsage

if TYPE_CHECKING:
    from airflow_agent_provider.results.workflow import AgentEntry, WorkflowResult

#: Longest reason kept in a run record.
REASON_CHARS = 500


class RunAgentSummary(BaseModel):
    """One agent of a recorded run, as the Operations view shows it."""

    model_config = ConfigDict(extra="ignore")

    task_id: str | None = None
    module: str | None = None
    agent: str | None = None
    critical: bool | None = None
    status: str | None = None
    gated: bool = False
    reason: str | None = None
    provider: str | None = None
    model: str | None = None
    answered_by: str | None = None
    #: Distinct ``provider/model`` targets that answered instead of the agent's model.
    fallbacks_used: list[str] = Field(default_factory=list)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float | None = None
    rounds: int | None = None
    duration_s: float | None = None
    mapped: bool = False
    #: How many items a mapped agent had (None: not mapped).
    items: int | None = None

    @property
    def name(self) -> str:
        """``Module.agent``: how the ledger names the agent."""
        return f"{self.module}.{self.agent}"

    @classmethod
    def from_record(cls, data: Mapping[str, Any] | None) -> RunAgentSummary:
        """Read a stored summary (any subset of the fields)."""
        return cls.model_validate(dict(data or {}))

    @classmethod
    def of(cls, task_id: str, entry: AgentEntry, result: AgentResult | None) -> RunAgentSummary:
        """The summary of one agent of a workflow result, and its own result (for the answerer)."""
        targets: list[str] = []
        for used in result.fallbacks_used if result is not None else []:
            if used.target not in targets:
                targets.append(used.target)
        answered_by = (result.answered_by if result is not None else None) or (
            f"{entry.provider}/{entry.model}" if entry.provider and entry.model else None
        )
        return cls(
            task_id=task_id,
            module=entry.module,
            agent=entry.agent,
            critical=entry.critical,
            status=entry.status,
            gated=entry.gated,
            reason=entry.reason[:REASON_CHARS] if entry.reason is not None else None,
            provider=entry.provider,
            model=entry.model,
            answered_by=answered_by,
            fallbacks_used=targets,
            usage=entry.usage,
            cost_usd=entry.cost_usd,
            rounds=entry.rounds,
            duration_s=entry.duration_s,
            mapped=entry.mapped,
            items=len(entry.items) if entry.items is not None else None,
        )


def summarize(
    result: WorkflowResult, agent_results: Mapping[str, AgentResult | None] | None = None
) -> dict[str, dict[str, Any]]:
    """Task id -> the stored form of its :class:`RunAgentSummary`, for every agent of ``result``."""
    own = agent_results or {}
    return {
        task_id: RunAgentSummary.of(task_id, entry, own.get(task_id)).model_dump(mode="json")
        for task_id, entry in result.agents.items()
    }


__all__ = ["REASON_CHARS", "RunAgentSummary", "summarize"]
