"""
A run snapshot: what one DAG run cost and how the models it used are doing right now.

Used by the Operations page (``plugins/api.py``) and the ``airflow-agents status`` CLI, so both show
the same numbers. Everything is read from the shared store: the ledger gives the per-module and
per-agent cost, the run scope gives live reservations (calls still running), and for each
``provider/model`` seen in the ledger the breaker state and rate-limit pause are read under the
conventional keys (``provider/model`` for breakers and model limits, ``provider`` for provider-wide
limits). A model that was never charged in this run (e.g. every call to it was refused) is not seen.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.cost.budget import run_scope
from airflow_agent_provider.cost.ledger import CostTotals, Ledger

if TYPE_CHECKING:
    from airflow_agent_provider.stores.base import Store

SNAPSHOT_VERSION = 1


def iso_utc(ts: float | None) -> str | None:
    """Epoch seconds as an ISO-8601 UTC string (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def pause_info(store: Store, key: str, now: float) -> dict[str, Any]:
    """Whether rate-limit ``key`` is paused (provider feedback such as retry-after), and until when."""
    until = store.paused_until(key)
    return {
        "key": key,
        "paused": until is not None,
        "paused_until": until,
        "paused_until_iso": iso_utc(until),
        "resume_in_s": None if until is None else round(max(until - now, 0.0), 3),
    }


def run_snapshot(store: Store, dag_id: str, run_id: str) -> dict[str, Any]:
    """
    The ledger summary of a run plus live reservations and, per model seen, breaker and limits.

    Shape::

        {"version": 1, "dag_id", "run_id", "store_time", "store_time_iso",
         "found": bool,                       # any ledger entry or live reservation
         "costs": RunCostSummary.to_dict(),   # total / modules / agents: calls, tokens, usd
         "run_scope": {"scope", "spent_usd", "reserved_usd", "calls"},
         "models": [{"provider", "model", "key", "calls", "input_tokens", "output_tokens",
                     "usd", "unknown_cost_calls", "breaker": "closed"|"open"|"half_open",
                     "limits": [pause_info(provider/model), pause_info(provider)]}]}
    """
    now = store.store_time()
    summary = Ledger(store).run_summary(dag_id, run_id)
    scope = run_scope(dag_id, run_id)
    totals = store.budget_totals(scope)

    per_model: dict[tuple[str, str], CostTotals] = {}
    for entry in summary.entries:
        per_model.setdefault((entry.provider, entry.model), CostTotals()).add(entry)

    models = []
    for (provider, model), model_totals in sorted(per_model.items()):
        key = f"{provider}/{model}"
        usage = model_totals.to_dict()
        models.append(
            {
                "provider": provider,
                "model": model,
                "key": key,
                "calls": usage["calls"],
                "input_tokens": usage["input_tokens"],
                "output_tokens": usage["output_tokens"],
                "usd": usage["usd"],
                "unknown_cost_calls": usage["unknown_cost_calls"],
                "breaker": store.breaker_state(key),
                "limits": [pause_info(store, key, now), pause_info(store, provider, now)],
            }
        )

    return {
        "version": SNAPSHOT_VERSION,
        "dag_id": dag_id,
        "run_id": run_id,
        "store_time": now,
        "store_time_iso": iso_utc(now),
        "found": bool(summary.entries) or totals.calls > 0 or totals.reserved > 0,
        "costs": summary.to_dict(),
        "run_scope": {
            "scope": scope,
            "spent_usd": round(totals.spent, 9),
            "reserved_usd": round(totals.reserved, 9),
            "calls": totals.calls,
        },
        "models": models,
    }


def format_snapshot(snapshot: dict[str, Any]) -> str:
    """A plain-text rendering for the CLI: totals, per agent, per model with breaker and pauses."""
    costs = snapshot["costs"]
    lines = [f"{snapshot['dag_id']} / {snapshot['run_id']}  (store time {snapshot['store_time_iso']})"]
    if not snapshot["found"]:
        lines.append("no spend recorded for this run")
        return "\n".join(lines)
    rows = [("agent", "calls", "in", "out", "usd")]
    for name, t in costs["agents"].items():
        usd = f"{t['usd']:.6f}" + (
            f" (+{t['unknown_cost_calls']} unknown)" if t["unknown_cost_calls"] else ""
        )
        rows.append((name, str(t["calls"]), str(t["input_tokens"]), str(t["output_tokens"]), usd))
    t = costs["total"]
    rows.append(
        ("TOTAL", str(t["calls"]), str(t["input_tokens"]), str(t["output_tokens"]), f"{t['usd']:.6f}")
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    reserved = snapshot["run_scope"]["reserved_usd"]
    if reserved:
        lines.append(f"reserved by running calls: ${reserved:.6f}")
    for m in snapshot["models"]:
        paused = [f"{p['key']} paused {p['resume_in_s']}s" for p in m["limits"] if p["paused"]]
        lines.append(
            f"model {m['key']}: breaker {m['breaker']}" + (f"; {', '.join(paused)}" if paused else "")
        )
    return "\n".join(lines)


__all__ = ["format_snapshot", "iso_utc", "pause_info", "run_snapshot"]
