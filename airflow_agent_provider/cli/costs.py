"""
``airflow-agents costs``: a run's spend from the shared store's ledger (not from XCom).

The ledger is written at settlement of every model call, so this table is right even for a run
that is still going, or whose result task never ran.

Spend is split by delivery: ``realtime`` calls and ``batch`` requests (the providers' batch APIs,
charged at their batch price, about half). Below the table, the batch requests are re-priced at
real-time prices, so the bill payer sees what choosing batch delivery saved on this run.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_agent_provider.cost.ledger import CostTotals, RealtimeEquivalent, RunCostSummary


def _row(label: str, delivery: str, totals: CostTotals) -> tuple[str, ...]:
    usd = f"{totals.usd:.6f}" + (
        f" (+{totals.unknown_cost_calls} unpriced)" if totals.unknown_cost_calls else ""
    )
    return (
        label,
        delivery,
        str(totals.calls),
        str(totals.input_tokens),
        str(totals.output_tokens),
        str(totals.cached_input_tokens),
        usd,
    )


def _rows(summary: RunCostSummary) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("scope", "delivery", "calls", "in", "out", "cached", "cost_usd")]
    for module, totals in sorted(summary.modules.items()):
        rows.append(_row(f"{module}", "", totals))
        for agent, agent_totals in sorted(summary.agents.items()):
            if agent.startswith(f"{module}."):
                modes = "+".join(summary.agent_deliveries.get(agent, ()))
                rows.append(_row(f"  {agent}", modes, agent_totals))
    # The run's total split by delivery, then the whole total (delivery column empty).
    for mode, totals in summary.deliveries.items():
        rows.append(_row("TOTAL", mode, totals))
    rows.append(_row("TOTAL", "", summary.total))
    return rows


def _savings(summary: RunCostSummary, equivalent: RealtimeEquivalent) -> dict[str, float | int]:
    """The batch requests' spend, their real-time price, and the difference."""
    batch = summary.deliveries["batch"]
    return {
        "batch_calls": batch.calls,
        "batch_usd": round(batch.usd, 9),
        "realtime_usd": round(equivalent.usd, 9),
        "saved_usd": round(equivalent.usd - batch.usd, 9),
        "unpriced_calls": equivalent.unpriced_calls,
    }


def _savings_line(savings: dict[str, float | int]) -> str:
    realtime, saved = float(savings["realtime_usd"]), float(savings["saved_usd"])
    share = f" ({saved / realtime:.0%})" if realtime > 0 else ""
    line = (
        f"batch delivery: {savings['batch_calls']} requests cost {float(savings['batch_usd']):.6f} USD; "
        f"at real-time prices {realtime:.6f} USD, saved {saved:.6f} USD{share}"
    )
    if savings["unpriced_calls"]:
        line += f" (+{savings['unpriced_calls']} requests without a real-time price)"
    return line


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def latest_run_id(store: Any, dag_id: str) -> str | None:
    """The newest run of ``dag_id`` known to Airflow's metadata DB."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        return run.run_id if run else None


def print_costs(dag_id: str, run_id: str | None, *, as_json: bool = False) -> int:
    from airflow_agent_provider.cost.ledger import Ledger, realtime_equivalent_usd
    from airflow_agent_provider.hooks.store import get_store

    store = get_store()
    run_id = run_id or latest_run_id(store, dag_id)
    if run_id is None:
        print(f"no run of DAG {dag_id!r}", file=sys.stderr)
        return 1
    summary = Ledger(store).run_summary(dag_id, run_id)
    savings = _savings(summary, realtime_equivalent_usd(summary.entries))
    if as_json:
        print(
            json.dumps({**summary.to_dict(deliveries=True), "batch_savings": savings}, indent=2, default=str)
        )
        return 0
    print(f"{dag_id}  run {run_id}  ({store.kind} store)")
    if not summary.total.calls:
        print("no model calls recorded for this run")
        return 0
    print(_table(_rows(summary)))
    if savings["batch_calls"]:
        print(_savings_line(savings))
    return 0
