"""The run index and usage reads (stores/runs_api.py) on both stores: real SQLite file, real redis-server."""

from __future__ import annotations

import pytest

from airflow_agent_provider.cost.budget import BudgetGuard, BudgetLimits, CallScope
from airflow_agent_provider.cost.pricing import CallCost
from airflow_agent_provider.limits.policy import RateLimitPolicy
from airflow_agent_provider.llm.types import Usage
from airflow_agent_provider.stores.runs_api import MAX_RECORD_BYTES, RunRecord


def record(dag_id="erp", run_id="manual__2026-12-01T10:00:00+00:00", ended=100.0, **kw) -> RunRecord:
    values = dict(
        workflow="erp",
        state="success",
        outcome="partial",
        started_at=None if ended is None else ended - 40,
        ended_at=ended,
        cost_usd=0.0123,
        budgets={"run": 1.0, "daily": 5.0, "monthly": None, "modules": {"Finance": 0.5}},
        rate_limits=[{"key": "openai/gpt-5-mini", "limits": {"requests_per_minute": 60}}],
        agents={"Finance.reconcile": {"status": "failed", "reason": "boom"}},
    )
    values.update(kw)
    return RunRecord(dag_id=dag_id, run_id=run_id, **values)


def test_record_round_trip_and_upsert(store):
    assert store.run_get("erp", "r1") is None
    store.run_record(record(run_id="r1", state="running", outcome=None, ended=None, started_at=1.0))
    store.run_record(record(run_id="r1"))
    got = store.run_get("erp", "r1")
    assert got == record(run_id="r1")
    assert got.duration_s == 40.0
    assert got.to_dict()["budgets"]["modules"] == {"Finance": 0.5}
    assert [r.run_id for r in store.runs_list()] == ["r1"]  # replaced, not listed twice


def test_runs_listed_newest_first_per_dag_and_bounded(store):
    for i in range(5):
        store.run_record(record(dag_id="erp" if i % 2 == 0 else "hr", run_id=f"run+{i}:x", ended=float(i)))
    assert [r.run_id for r in store.runs_list()] == ["run+4:x", "run+3:x", "run+2:x", "run+1:x", "run+0:x"]
    assert [r.run_id for r in store.runs_list("hr")] == ["run+3:x", "run+1:x"]
    assert [r.run_id for r in store.runs_list(limit=2)] == ["run+4:x", "run+3:x"]
    assert store.runs_list("nobody") == []
    assert len(store.runs_list(limit=0)) == 1  # clamped to at least one


def test_oversized_record_is_refused(store):
    huge = record(agents={"a": {"output": "x" * (MAX_RECORD_BYTES + 1)}})
    with pytest.raises(ValueError, match="larger than"):
        store.run_record(huge)
    assert store.run_get("erp", huge.run_id) is None


def test_ledger_runs_lists_charged_runs(store):
    guard = BudgetGuard(store)
    for run_id, calls in (("manual__a+1:2", 2), ("manual__b", 1)):
        for i in range(calls):
            scope = CallScope("erp", run_id, "Finance", "reconcile", "gpt-5-mini", "openai")
            held = guard.reserve(scope, 0.01, BudgetLimits(), reservation_id=f"{run_id}-{i}")
            held.settle(CallCost(0.001, "override"), Usage(10, 5, 0))
    scope = CallScope("other", "r", "M", "a", "m", "p")
    guard.reserve(scope, 0.01, BudgetLimits(), reservation_id="o").settle(
        CallCost(0.001, "override"), Usage(1, 1, 0)
    )
    runs = store.ledger_runs("erp")
    assert {(r.run_id, r.calls) for r in runs} == {("manual__a+1:2", 2), ("manual__b", 1)}
    assert all(r.first_ts <= r.last_ts for r in runs)
    assert {r.dag_id for r in store.ledger_runs()} == {"erp", "other"}
    assert store.ledger_runs("missing") == []


def test_limit_usage_counts_windows_tokens_and_leases(store):
    policy = RateLimitPolicy(requests_per_minute=10, tokens_per_minute=1000, max_concurrent=3)
    tiers = policy.tiers()
    unseen = store.limit_usage("openai/gpt-5-mini", tiers)
    assert not unseen.seen
    assert unseen.leases_held == 0
    assert [t.used for t in unseen.tiers] == [0, 0]
    grants = [
        store.acquire("openai/gpt-5-mini", tiers, 100 * (i + 1), max_concurrent=3, lease_ttl_s=60.0)
        for i in range(2)
    ]
    assert all(g.granted for g in grants)
    store.release("openai/gpt-5-mini", grants[0].grant_id)
    usage = store.limit_usage("openai/gpt-5-mini", tiers)
    assert usage.seen
    assert [(t.name, t.unit, t.limit, t.used) for t in usage.tiers] == [
        ("requests_per_minute", "requests", 10, 2),
        ("tokens_per_minute", "tokens", 1000, 300),
    ]
    assert usage.leases_held == 1
    assert usage.tiers[0].ratio == 0.2
    # A read: asking again changes nothing.
    again = store.limit_usage("openai/gpt-5-mini", tiers)
    assert (again.tiers, again.leases_held) == (usage.tiers, usage.leases_held)


def test_record_from_a_run_result_keeps_the_bill_not_the_outputs():
    from airflow_agent_provider.stores.runs_api import run_record_from_result

    result = {
        "dag_id": "erp",
        "run_id": "manual__x+1",
        "workflow": "erp",
        "outcome": "partial",
        "agents": {
            "Finance.reconcile": {
                "module": "Finance",
                "agent": "reconcile",
                "critical": True,
                "status": "success",
                "reason": None,
                "provider": "openai",
                "model": "gpt-5-mini",
                "usage": {"input_tokens": 5},
                "cost_usd": 0.01,
                "output": "SECRET LEDGER TEXT",
            },
            "Audit.check": {
                "module": "Audit",
                "agent": "check",
                "critical": False,
                "status": "failed",
                "reason": "x" * 2000,
                "provider": None,
                "model": None,
                "usage": {},
                "cost_usd": None,
            },
        },
        "modules": {"Finance": {"agents": 1, "succeeded": 1, "cost_usd": 0.01, "usage": {}}},
        "totals": {"cost_usd": 0.01, "cost_complete": True},
        "cost_budget": 0.5,
    }
    raw = {
        "Finance.reconcile": {
            "answered_by": "anthropic/claude-sonnet-4-5",
            "fallbacks_used": [{"round": 1, "target": "anthropic/claude-sonnet-4-5", "attempts": []}],
        }
    }
    rec = run_record_from_result(
        result,
        agent_results=raw,
        budgets={"run": 0.5, "daily": 2.0},
        started_at=10.0,
        ended_at=25.5,
        rate_limits=[
            {"key": "openai", "limits": {"requests_per_minute": 5}, "provider": "openai", "model": None}
        ],
    )
    assert rec.state == "success"
    assert rec.outcome == "partial"
    assert rec.duration_s == 15.5
    assert rec.agents["Finance.reconcile"]["answered_by"] == "anthropic/claude-sonnet-4-5"
    assert rec.agents["Finance.reconcile"]["fallbacks_used"] == ["anthropic/claude-sonnet-4-5"]
    assert len(rec.agents["Audit.check"]["reason"]) == 500
    assert "SECRET LEDGER TEXT" not in rec.to_json()
    assert rec.rate_limits == [{"key": "openai", "limits": {"requests_per_minute": 5}}]
    assert rec.budgets == {"run": 0.5, "daily": 2.0}
    failed = run_record_from_result({**result, "outcome": "failed"})
    assert failed.state == "failed"
    assert failed.budgets == {"run": 0.5}
