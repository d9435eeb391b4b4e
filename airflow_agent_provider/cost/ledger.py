"""
Reading the spend ledger: what a DAG run cost, per module and per agent.

The ledger is written by ``Reservation.settle`` (one entry per charged call); this module only
reads it, for the ``airflow-agents costs`` CLI, the operator's XCom summary and the sensors.
A call whose price was unknown counts in tokens and in ``unknown_cost_calls``, never as $0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_agent_provider.cost.budget import (
    agent_scope,
    day_scope,
    module_scope,
    month_scope,
    run_scope,
)
from airflow_agent_provider.stores.budget_api import (
    BudgetStore,
    LedgerEntry,
    ScopeTotals,
)


@dataclass
class CostTotals:
    """Tokens and USD of a group of calls."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    usd: float = 0.0
    #: Calls whose price was unknown; their USD is not in ``usd``.
    unknown_cost_calls: int = 0

    def add(self, entry: LedgerEntry) -> None:
        self.calls += 1
        self.input_tokens += entry.input_tokens
        self.output_tokens += entry.output_tokens
        self.cached_input_tokens += entry.cached_input_tokens
        if entry.usd is None:
            self.unknown_cost_calls += 1
        else:
            self.usd += entry.usd

    def to_dict(self) -> dict[str, float | int]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "usd": round(self.usd, 9),
            "unknown_cost_calls": self.unknown_cost_calls,
        }


@dataclass
class RunCostSummary:
    """The cost of one DAG run: totals, per module and per agent (``"Module.agent"``)."""

    dag_id: str
    run_id: str
    total: CostTotals = field(default_factory=CostTotals)
    modules: dict[str, CostTotals] = field(default_factory=dict)
    agents: dict[str, CostTotals] = field(default_factory=dict)
    entries: list[LedgerEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form (for XCom and ``airflow-agents costs --json``); entries are left out."""
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "total": self.total.to_dict(),
            "modules": {name: totals.to_dict() for name, totals in sorted(self.modules.items())},
            "agents": {name: totals.to_dict() for name, totals in sorted(self.agents.items())},
        }


class Ledger:
    """Read access to the spend recorded in a store."""

    def __init__(self, store: BudgetStore) -> None:
        self.store = store

    def entries(self, dag_id: str, run_id: str) -> list[LedgerEntry]:
        return self.store.ledger_entries(dag_id, run_id)

    def run_summary(self, dag_id: str, run_id: str) -> RunCostSummary:
        summary = RunCostSummary(dag_id, run_id)
        for entry in self.store.ledger_entries(dag_id, run_id):
            summary.entries.append(entry)
            summary.total.add(entry)
            summary.modules.setdefault(entry.module, CostTotals()).add(entry)
            summary.agents.setdefault(f"{entry.module}.{entry.agent}", CostTotals()).add(entry)
        return summary

    # Per-scope totals, straight from the store (include live reservations).

    def run_totals(self, dag_id: str, run_id: str) -> ScopeTotals:
        return self.store.budget_totals(run_scope(dag_id, run_id))

    def module_totals(self, dag_id: str, run_id: str, module: str) -> ScopeTotals:
        return self.store.budget_totals(module_scope(dag_id, run_id, module))

    def agent_totals(self, dag_id: str, run_id: str, module: str, agent: str) -> ScopeTotals:
        return self.store.budget_totals(agent_scope(dag_id, run_id, module, agent))

    def day_totals(self, dag_id: str, day: str) -> ScopeTotals:
        return self.store.budget_totals(day_scope(dag_id, day))

    def month_totals(self, dag_id: str, month: str) -> ScopeTotals:
        return self.store.budget_totals(month_scope(dag_id, month))
