"""
Workflow results for people: the per-agent table the result task logs and ``airflow-agents result``
prints, and the JSON of ``airflow-agents result --json``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_agent_provider.results.workflow import AgentEntry, WorkflowResult


def _label(task_id: str, entry: AgentEntry) -> str:
    label = task_id
    if entry.items is not None:
        count = len(entry.items)
        label += f" [{count} item{'' if count == 1 else 's'}]"
    return label + ("" if entry.critical else " (optional)")


def _cost(entry: AgentEntry) -> str:
    if entry.cost_usd is None and entry.status == "success":
        return "unknown"
    return f"{entry.cost_usd or 0:.6f}"


def format_table(result: WorkflowResult) -> str:
    """A per-agent table of status, model, tokens and cost, with the run's totals last."""
    rows = [("agent", "status", "model", "in", "out", "cost_usd")]
    for task_id, entry in result.agents.items():
        rows.append(
            (
                _label(task_id, entry),
                entry.status,
                entry.model or "-",
                str(entry.usage.input_tokens),
                str(entry.usage.output_tokens),
                _cost(entry),
            )
        )
    totals = result.totals
    rows.append(
        (
            "TOTAL",
            result.outcome,
            "",
            str(totals.usage.input_tokens),
            str(totals.usage.output_tokens),
            f"{totals.cost_usd:.6f}" + ("" if totals.cost_complete else " (+unknown)"),
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    rule = "  ".join("-" * w for w in widths)
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, rule)
    lines.insert(len(lines) - 1, rule)
    return "\n".join(lines)


def format_heading(result: WorkflowResult, state: str | None) -> str:
    """The line above the table: which run, its Airflow state and its outcome."""
    return f"{result.dag_id}  run {result.run_id}  state {state}  outcome {result.outcome}"


def to_json(result: WorkflowResult) -> str:
    """The whole result as indented JSON (the XCom form)."""
    return json.dumps(result.to_dict(), indent=2, default=str)


__all__ = ["format_heading", "format_table", "to_json"]
