"""
Reading the spend ledger: what a DAG run cost, per module, per agent and per delivery mode.

The ledger is written by ``Reservation.settle`` (one entry per charged call); this module only
reads it, for the ``airflow-agents costs`` CLI, the operator's XCom summary and the sensors.
A call whose price was unknown counts in tokens and in ``unknown_cost_calls``, never as $0.

Every entry says how its call was delivered (``realtime`` or ``batch``, the providers' batch APIs
at their batch price); the summary totals both, so a bill payer sees what the batch agents cost
and, with :func:`realtime_equivalent_usd`, what they would have cost as real-time calls. Entries
of a store written before delivery was recorded read as ``realtime`` (which they were).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_agent_provider.cost.budget import (
    agent_scope,
    day_scope,
    module_scope,
    month_scope,
    run_scope,
)

if TYPE_CHECKING:
    from airflow_agent_provider.stores.budget_api import BudgetStore, LedgerEntry, ScopeTotals


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


#: The delivery modes a ledger entry can carry, in the order they are shown.
DELIVERY_MODES: tuple[str, ...] = ("realtime", "batch")


def _every_delivery() -> dict[str, CostTotals]:
    return {mode: CostTotals() for mode in DELIVERY_MODES}


#: ``price_source`` suffix the batch operators give a batch request's entry (``genai-prices+batch``).
BATCH_SOURCE_SUFFIX = "+batch"


def entry_delivery(entry: LedgerEntry) -> str:
    """
    ``realtime`` or ``batch``: the entry's ``delivery``, or ``batch`` when its ``price_source`` says
    so. An entry of an older store (no delivery column) was a real-time call.
    """
    if entry.delivery == "batch" or entry.price_source.endswith(BATCH_SOURCE_SUFFIX):
        return "batch"
    return entry.delivery or "realtime"


@dataclass
class RunCostSummary:
    """
    The cost of one DAG run: totals, per module, per agent (``"Module.agent"``) and per delivery.

    ``deliveries`` always has ``realtime`` and ``batch`` (zero when no call was delivered that way),
    so that a reader of the JSON never has to tell "no batch calls" from "an older provider".
    ``agent_deliveries`` names the modes each agent's calls used (a batch agent that fell back to a
    real-time retry has both).
    """

    dag_id: str
    run_id: str
    total: CostTotals = field(default_factory=CostTotals)
    modules: dict[str, CostTotals] = field(default_factory=dict)
    agents: dict[str, CostTotals] = field(default_factory=dict)
    deliveries: dict[str, CostTotals] = field(default_factory=_every_delivery)
    agent_deliveries: dict[str, tuple[str, ...]] = field(default_factory=dict)
    entries: list[LedgerEntry] = field(default_factory=list)

    def add(self, entry: LedgerEntry) -> None:
        """Count one ledger entry in every total it belongs to."""
        agent = f"{entry.module}.{entry.agent}"
        delivery = entry_delivery(entry)
        self.entries.append(entry)
        self.total.add(entry)
        self.modules.setdefault(entry.module, CostTotals()).add(entry)
        self.agents.setdefault(agent, CostTotals()).add(entry)
        self.deliveries.setdefault(delivery, CostTotals()).add(entry)
        modes = self.agent_deliveries.get(agent, ())
        if delivery not in modes:
            self.agent_deliveries[agent] = tuple(m for m in self._mode_order() if m in {*modes, delivery})

    def _mode_order(self) -> list[str]:
        return [*DELIVERY_MODES, *sorted(set(self.deliveries) - set(DELIVERY_MODES))]

    def to_dict(self, *, deliveries: bool = False) -> dict[str, object]:
        """
        JSON-safe form (for XCom and ``airflow-agents costs --json``); entries are left out.

        ``deliveries=True`` adds ``deliveries`` (totals per delivery mode) and ``agent_deliveries``;
        they are opt-in so that the shape the REST API and the status snapshot return stays as it is.
        """
        data: dict[str, object] = {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "total": self.total.to_dict(),
            "modules": {name: totals.to_dict() for name, totals in sorted(self.modules.items())},
            "agents": {name: totals.to_dict() for name, totals in sorted(self.agents.items())},
        }
        if deliveries:
            data["deliveries"] = {mode: self.deliveries[mode].to_dict() for mode in self._mode_order()}
            data["agent_deliveries"] = {
                name: list(modes) for name, modes in sorted(self.agent_deliveries.items())
            }
        return data


@dataclass(frozen=True)
class RealtimeEquivalent:
    """What the batch calls of a run would have cost as real-time calls (``usd`` over the priced ones)."""

    usd: float
    #: Batch calls whose real-time price is not known (not in genai-prices and no override).
    unpriced_calls: int = 0


def realtime_equivalent_usd(entries: Iterable[LedgerEntry]) -> RealtimeEquivalent:
    """
    The real-time price of the ``batch`` entries among ``entries``: what batch delivery saved.

    Re-priced from each entry's usage with genai-prices' real-time price. An entry priced by a
    workflow's ``price:`` override (``price_source`` ``override`` or ``override+batch``) was charged the override times
    the batch factor (see :mod:`.batch_pricing`), so its real-time price is its charge divided by the
    factor. An entry whose price was unknown stays out of ``usd`` and is counted in
    ``unpriced_calls``.
    """
    from airflow_agent_provider.cost.batch_pricing import BATCH_PRICE_FACTOR
    from airflow_agent_provider.cost.pricing import price_call
    from airflow_agent_provider.llm.types import Usage

    usd, unpriced = 0.0, 0
    for entry in entries:
        if entry_delivery(entry) != "batch":
            continue
        if entry.usd is not None and entry.price_source.removesuffix(BATCH_SOURCE_SUFFIX) == "override":
            usd += entry.usd / BATCH_PRICE_FACTOR
            continue
        usage = Usage(entry.input_tokens, entry.output_tokens, entry.cached_input_tokens)
        priced = price_call(entry.provider, entry.model, usage)
        if priced.usd is None:
            unpriced += 1
        else:
            usd += priced.usd
    return RealtimeEquivalent(usd, unpriced)


class Ledger:
    """Read access to the spend recorded in a store."""

    def __init__(self, store: BudgetStore) -> None:
        self.store = store

    def entries(self, dag_id: str, run_id: str) -> list[LedgerEntry]:
        return self.store.ledger_entries(dag_id, run_id)

    def run_summary(self, dag_id: str, run_id: str) -> RunCostSummary:
        summary = RunCostSummary(dag_id, run_id)
        for entry in self.store.ledger_entries(dag_id, run_id):
            summary.add(entry)
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
