"""
``airflow-agents costs``: a run's spend from the shared store's ledger (not from XCom).

The ledger is written at settlement of every model call, so this table is right even for a run
that is still going, or whose result task never ran.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _rows(summary: Any) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("scope", "calls", "in", "out", "cached", "cost_usd")]

    def row(label: str, totals: Any) -> tuple[str, ...]:
        usd = f"{totals.usd:.6f}" + (
            f" (+{totals.unknown_cost_calls} unpriced)" if totals.unknown_cost_calls else ""
        )
        return (
            label,
            str(totals.calls),
            str(totals.input_tokens),
            str(totals.output_tokens),
            str(totals.cached_input_tokens),
            usd,
        )

    for module, totals in sorted(summary.modules.items()):
        rows.append(row(f"{module}", totals))
        for agent, agent_totals in sorted(summary.agents.items()):
            if agent.startswith(f"{module}."):
                rows.append(row(f"  {agent}", agent_totals))
    rows.append(row("TOTAL", summary.total))
    return rows


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
    from airflow_agent_provider.cost.ledger import Ledger
    from airflow_agent_provider.hooks.store import get_store

    store = get_store()
    run_id = run_id or latest_run_id(store, dag_id)
    if run_id is None:
        print(f"no run of DAG {dag_id!r}", file=sys.stderr)
        return 1
    summary = Ledger(store).run_summary(dag_id, run_id)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2, default=str))
        return 0
    print(f"{dag_id}  run {run_id}  ({store.kind} store)")
    if not summary.total.calls:
        print("no model calls recorded for this run")
        return 0
    print(_table(_rows(summary)))
    return 0
