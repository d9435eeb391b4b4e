"""
What the Operations views show, computed from the store alone (no Airflow import: tested on its own).

Three views, each one JSON document the page renders as is:

- :func:`overview`: the fleet: every workflow's spend today and this month against its budgets,
  recent runs (state, outcome, cost, duration), the most expensive agents and models, spend per
  day for 30 days, the rate-limit keys the workflows configure with their usage per tier, open
  breakers and active pauses;
- :func:`workflow_view`: one workflow (DAG): its budgets, spend, runs, agents and daily spend;
- :func:`run_view`: one run: per-agent cost (sorted, the most expensive first) joined with the run
  result's status and reason, per-module totals against the module budgets, the run budget and the
  reservations held right now.

Honest states: a DAG or run the store knows nothing about raises :class:`Unknown` (the API answers
404 with what is unknown and why), a rate-limit key no workflow configures and the store never saw
likewise; "no limit" is ``None``, never 0. Amounts are USD numbers rounded to the nano-dollar (the
ledger's unit); the page formats them. Scope keys (``run:<dag>:<run>``...) stay internal.

Who sees what is decided by the caller: ``readable`` says whether the user may read a DAG's runs,
and every per-DAG row of the overview is filtered through it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_agent_provider.cost.budget import agent_scope, day_scope, module_scope, month_scope, run_scope
from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.observability.snapshots import iso_utc
from airflow_agent_provider.plugins._view_common import (
    TOP_FROM_RUNS,
    WARN_RATIO,
    Readable,
    Unknown,
    latest_records,
)
from airflow_agent_provider.plugins.limit_views import breaker_view, limit_view, limits_view
from airflow_agent_provider.results.summary import RunAgentSummary
from airflow_agent_provider.stores.base import Store
from airflow_agent_provider.stores.runs_api import RunRecord

CURRENCY = "USD"
CHART_DAYS = 30
RECENT_RUNS = 25
TOP_N = 10
MAX_WORKFLOWS = 200


def usd(value: float | None) -> float | None:
    return None if value is None else round(float(value), 9)


def budget_line(spent: float, reserved: float, limit: float | None) -> dict[str, Any]:
    """Spent and reserved against a limit: the share used and a level (``none`` without a limit)."""
    line: dict[str, Any] = {"spent_usd": usd(spent), "reserved_usd": usd(reserved), "limit_usd": usd(limit)}
    if limit is None or limit <= 0:
        return {**line, "pct": None, "level": "none"}
    ratio = (spent + reserved) / limit
    level = "over" if ratio >= 1 else "warn" if ratio >= WARN_RATIO else "ok"
    return {**line, "pct": round(ratio * 100, 1), "level": level}


def _period(store: Store, dag_id: str, scope: str, period: str, limit: float | None) -> dict[str, Any]:
    totals = store.budget_totals(scope)
    return {"period": period, "calls": totals.calls, **budget_line(totals.spent, totals.reserved, limit)}


def _today(now: float) -> datetime:
    return datetime.fromtimestamp(now, tz=timezone.utc)


def run_row(record: RunRecord) -> dict[str, Any]:
    """A run as listed: identity, state, outcome, cost, duration and times (no agent detail)."""
    return {
        "dag_id": record.dag_id,
        "run_id": record.run_id,
        "workflow": record.workflow,
        "state": record.state,
        "outcome": record.outcome,
        "cost_usd": usd(record.cost_usd),
        "cost_complete": record.cost_complete,
        "duration_s": record.duration_s,
        "started_at": record.started_at,
        "started_at_iso": iso_utc(record.started_at),
        "ended_at": record.ended_at,
        "ended_at_iso": iso_utc(record.ended_at),
        "recorded": True,
    }


def _running_row(store: Store, dag_id: str, run_id: str, first_ts: float, last_ts: float) -> dict[str, Any]:
    totals = store.budget_totals(run_scope(dag_id, run_id))
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "workflow": dag_id,
        "state": "running" if totals.reserved > 0 else "no result yet",
        "outcome": None,
        "cost_usd": usd(totals.spent),
        "cost_complete": True,
        "duration_s": None,
        "started_at": first_ts,
        "started_at_iso": iso_utc(first_ts),
        "ended_at": None,
        "ended_at_iso": None,
        "recorded": False,
        "reserved_usd": usd(totals.reserved),
    }


def recent_runs(
    store: Store, readable: Readable, dag_id: str | None = None, limit: int = RECENT_RUNS
) -> list[dict[str, Any]]:
    """Recorded runs and runs the ledger knows without a record yet (running), newest first."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for record in store.runs_list(dag_id, limit=limit * 2):
        if readable(record.dag_id):
            rows[(record.dag_id, record.run_id)] = run_row(record)
    for run in store.ledger_runs(dag_id, limit=limit):
        if (run.dag_id, run.run_id) not in rows and readable(run.dag_id):
            rows[(run.dag_id, run.run_id)] = _running_row(
                store, run.dag_id, run.run_id, run.first_ts, run.last_ts
            )
    ordered = sorted(rows.values(), key=lambda r: r["ended_at"] or r["started_at"] or 0.0, reverse=True)
    return ordered[:limit]


def known_dags(store: Store, readable: Readable) -> dict[str, RunRecord | None]:
    """DAG id -> its latest run record (None: only ledger entries so far), for the readable DAGs."""
    dags: dict[str, RunRecord | None] = dict(latest_records(store, readable))
    for run in store.ledger_runs(None, limit=500):
        if readable(run.dag_id):
            dags.setdefault(run.dag_id, None)
    return dict(sorted(dags.items())[:MAX_WORKFLOWS])


def _budgets(record: RunRecord | None) -> dict[str, Any]:
    budgets = dict(record.budgets) if record is not None else {}
    return {
        "run": budgets.get("run"),
        "daily": budgets.get("daily"),
        "monthly": budgets.get("monthly"),
        "modules": dict(budgets.get("modules") or {}),
        "known": record is not None,
    }


def workflow_row(store: Store, dag_id: str, record: RunRecord | None, now: float) -> dict[str, Any]:
    """A workflow's spend today and this month against its budgets (from its latest run record)."""
    today = _today(now)
    day, month = today.strftime("%Y-%m-%d"), today.strftime("%Y-%m")
    budgets = _budgets(record)
    return {
        "dag_id": dag_id,
        "workflow": record.workflow if record is not None else dag_id,
        "budgets": budgets,
        "today": _period(store, dag_id, day_scope(dag_id, day), day, budgets["daily"]),
        "month": _period(store, dag_id, month_scope(dag_id, month), month, budgets["monthly"]),
        "last_run": run_row(record) if record is not None else None,
    }


def daily_spend(
    store: Store, dag_ids: Iterable[str], now: float, days: int = CHART_DAYS
) -> list[dict[str, Any]]:
    """Settled spend per UTC day (oldest first) summed over ``dag_ids``, read from the day budget scopes."""
    today = _today(now).date()
    dag_ids = list(dag_ids)
    series = []
    for back in range(days - 1, -1, -1):
        day = (today - timedelta(days=back)).isoformat()
        total = sum(store.budget_totals(day_scope(dag_id, day)).spent for dag_id in dag_ids)
        series.append({"day": day, "spent_usd": usd(total)})
    return series


def top_spenders(
    store: Store, runs: Iterable[tuple[str, str]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The most expensive agents and models over the ledgers of ``runs`` (most expensive first)."""
    # (dag_id, agent) -> row, and provider/model -> row.
    agents: dict[Any, dict[str, Any]] = {}
    models: dict[Any, dict[str, Any]] = {}
    ledger = Ledger(store)
    for dag_id, run_id in runs:
        for entry in ledger.entries(dag_id, run_id):
            for table, key, base in (
                (
                    agents,
                    (dag_id, f"{entry.module}.{entry.agent}"),
                    {"dag_id": dag_id, "agent": f"{entry.module}.{entry.agent}"},
                ),
                (models, f"{entry.provider}/{entry.model}", {"model": f"{entry.provider}/{entry.model}"}),
            ):
                row = table.setdefault(
                    key,
                    {
                        **base,
                        "calls": 0,
                        "input_tokens": 0,
                        "output_tokens": 0,
                        "cost_usd": 0.0,
                        "unknown_cost_calls": 0,
                        "runs": set(),
                    },
                )
                row["calls"] += 1
                row["input_tokens"] += entry.input_tokens
                row["output_tokens"] += entry.output_tokens
                row["runs"].add((dag_id, run_id))
                if entry.usd is None:
                    row["unknown_cost_calls"] += 1
                else:
                    row["cost_usd"] += entry.usd

    def ranked(table: dict[Any, dict[str, Any]]) -> list[dict[str, Any]]:
        rows = sorted(table.values(), key=lambda r: (-r["cost_usd"], -r["calls"]))[:TOP_N]
        return [{**r, "cost_usd": usd(r["cost_usd"]), "runs": len(r["runs"])} for r in rows]

    return ranked(agents), ranked(models)


# -- the three views ----------------------------------------------------------------------------


def overview(store: Store, readable: Readable) -> dict[str, Any]:
    """The fleet overview (see the module docstring); ``empty`` when the store holds nothing readable."""
    now = store.store_time()
    dags = known_dags(store, readable)
    runs = recent_runs(store, readable)
    records = [r for r in dags.values() if r is not None]
    ledger_runs = [
        (r.dag_id, r.run_id) for r in store.ledger_runs(None, limit=TOP_FROM_RUNS) if readable(r.dag_id)
    ]
    top_agents, top_models = top_spenders(store, ledger_runs)
    limits = limits_view(store, records, now)
    models_seen = {m["model"] for m in top_models}
    breaker_keys = sorted(models_seen | {row["key"] for row in limits})
    breakers = [{"key": k, "state": s} for k in breaker_keys if (s := store.breaker_state(k)) != "closed"]
    return {
        "currency": CURRENCY,
        "store_time": now,
        "store_time_iso": iso_utc(now),
        "empty": not dags,
        "workflows": [workflow_row(store, dag_id, record, now) for dag_id, record in dags.items()],
        "runs": runs,
        "top_agents": top_agents,
        "top_models": top_models,
        "top_from_runs": len(ledger_runs),
        "daily": daily_spend(store, dags, now),
        "limits": limits,
        "breakers_open": breakers,
        "pauses": [
            {"key": r["key"], "paused_until_iso": r["paused_until_iso"], "resume_in_s": r["resume_in_s"]}
            for r in limits
            if r["paused"]
        ],
    }


def workflow_view(store: Store, dag_id: str) -> dict[str, Any]:
    """One workflow; :class:`Unknown` when the store has no run and no spend of ``dag_id``."""
    records = store.runs_list(dag_id, limit=1)
    ledger = store.ledger_runs(dag_id, limit=1)
    if not records and not ledger:
        raise Unknown(
            "dag",
            f"unknown DAG {dag_id!r}: the agent store has no run and no spend of it "
            "(a typo, or it has not run since this store was set up)",
        )
    now = store.store_time()
    record = records[0] if records else None
    ledger_runs = [(r.dag_id, r.run_id) for r in store.ledger_runs(dag_id, limit=TOP_FROM_RUNS)]
    top_agents, top_models = top_spenders(store, ledger_runs)
    return {
        "currency": CURRENCY,
        "store_time": now,
        "store_time_iso": iso_utc(now),
        **workflow_row(store, dag_id, record, now),
        "runs": recent_runs(store, lambda _: True, dag_id),
        "top_agents": top_agents,
        "top_models": top_models,
        "daily": daily_spend(store, [dag_id], now),
        "limits": limits_view(store, [record] if record else [], now),
    }


def run_view(store: Store, dag_id: str, run_id: str) -> dict[str, Any]:
    """One run; :class:`Unknown` for a DAG the store does not know, or a run of it that it does not know."""
    record = store.run_get(dag_id, run_id)
    summary = Ledger(store).run_summary(dag_id, run_id)
    run_totals = store.budget_totals(run_scope(dag_id, run_id))
    if record is None and not summary.entries and run_totals.calls == 0 and run_totals.reserved == 0:
        if not store.runs_list(dag_id, limit=1) and not store.ledger_runs(dag_id, limit=1):
            raise Unknown(
                "dag",
                f"unknown DAG {dag_id!r}: the agent store has no run and no spend of it "
                "(a typo, or it has not run since this store was set up)",
            )
        raise Unknown(
            "run",
            f"unknown run {run_id!r} of DAG {dag_id!r}: no result and no spend recorded "
            "(a typo, a run that made no model call yet, or one from before this store)",
        )
    now = store.store_time()
    latest = record or next(iter(store.runs_list(dag_id, limit=1)), None)
    budgets = _budgets(latest)
    # The run result's summary of each agent; for a run still going, the agents of the workflow's
    # latest run, without their (not yet known) results.
    stored = record.agents if record is not None else (latest.agents if latest is not None else {})
    result_agents = {t: RunAgentSummary.from_record(a) for t, a in stored.items()}
    if record is None:
        result_agents = {
            t: RunAgentSummary(module=a.module, agent=a.agent, mapped=a.mapped)
            for t, a in result_agents.items()
        }
    by_name = {a.name: (task_id, a) for task_id, a in result_agents.items()}
    rows: list[dict[str, Any]] = []
    for name in sorted(set(summary.agents) | set(by_name)):
        totals = summary.agents.get(name)
        task_id, agent = by_name.get(name, (None, RunAgentSummary()))
        module, _, agent_name = name.partition(".")
        reserved = store.budget_totals(agent_scope(dag_id, run_id, module, agent_name)).reserved
        if record is None:
            status: str | None = "running" if reserved > 0 else "called" if totals else "not called yet"
        else:
            status = agent.status
        rows.append(
            {
                "agent": name,
                "task_id": task_id,
                "module": agent.module or module,
                "calls": totals.calls if totals else 0,
                "input_tokens": totals.input_tokens if totals else 0,
                "output_tokens": totals.output_tokens if totals else 0,
                "cached_input_tokens": totals.cached_input_tokens if totals else 0,
                "cost_usd": usd(totals.usd) if totals else 0.0,
                "unknown_cost_calls": totals.unknown_cost_calls if totals else 0,
                "reserved_usd": usd(reserved),
                "status": status,
                "reason": agent.reason,
                "critical": agent.critical,
                "answered_by": agent.answered_by,
                "fallbacks_used": agent.fallbacks_used,
                "duration_s": agent.duration_s,
                "mapped": agent.mapped,
            }
        )
    rows.sort(key=lambda r: (-(r["cost_usd"] or 0.0), r["agent"]))
    modules = []
    for name in sorted(set(summary.modules) | set(budgets["modules"]) | {r["module"] for r in rows}):
        scope_totals = store.budget_totals(module_scope(dag_id, run_id, name))
        ledger_totals = summary.modules.get(name)
        modules.append(
            {
                "module": name,
                "calls": ledger_totals.calls if ledger_totals else 0,
                **budget_line(scope_totals.spent, scope_totals.reserved, budgets["modules"].get(name)),
            }
        )
    return {
        "currency": CURRENCY,
        "store_time": now,
        "store_time_iso": iso_utc(now),
        "dag_id": dag_id,
        "run_id": run_id,
        "run": run_row(record)
        if record is not None
        else _running_row(
            store,
            dag_id,
            run_id,
            min((e.ts or now) for e in summary.entries) if summary.entries else now,
            now,
        ),
        "live": record is None,
        "total": {**summary.total.to_dict(), "usd": usd(summary.total.usd)},
        "run_budget": budget_line(run_totals.spent, run_totals.reserved, budgets["run"]),
        "budgets_known": budgets["known"],
        "modules": modules,
        "agents": rows,
    }


__all__ = [
    "CURRENCY",
    "Unknown",
    "breaker_view",
    "budget_line",
    "limit_view",
    "limits_view",
    "overview",
    "run_view",
    "workflow_view",
]
