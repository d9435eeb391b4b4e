"""The three views' endpoints on both stores: numbers, budgets, limiter usage and every honest state.

``spent_store`` (conftest) holds the ledger of two runs (charged through the budget engine) and
the run records their result tasks wrote, with the workflow's budgets and rate limits.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import quote

import pytest

from airflow_agent_provider.cost.budget import BudgetGuard, BudgetLimits, CallScope
from airflow_agent_provider.limits.policy import RateLimitPolicy
from airflow_agent_provider.stores.breaker_api import BreakerConfig
from tests.plugins.conftest import BUDGETS, CALLS, DAG, RUN, SECRET_DAG, charge, make_client, record_run

R = quote(RUN, safe="")  # what encodeURIComponent gives: '+' -> %2B, ':' -> %3A


def _now(store) -> datetime:
    return datetime.fromtimestamp(store.store_time(), tz=timezone.utc)


def test_run_view_sorts_agents_by_cost_and_joins_the_result(client):
    body = client.get(f"/api/runs/{DAG}/{R}").json()
    assert body["dag_id"] == DAG
    assert body["run_id"] == RUN
    assert body["currency"] == "USD"
    assert [a["agent"] for a in body["agents"]] == [
        "Finance.close_books",
        "Finance.reconcile",
        "Inventory.count",
    ]
    costs = {a["agent"]: a for a in body["agents"]}
    assert costs["Finance.close_books"]["cost_usd"] == pytest.approx(0.024)
    assert costs["Finance.reconcile"]["calls"] == 2
    assert costs["Finance.reconcile"]["input_tokens"] == 3000
    assert costs["Finance.close_books"]["fallbacks_used"] == ["anthropic/claude-sonnet-4-5"]
    assert costs["Finance.reconcile"]["answered_by"] == "openai/gpt-5-mini"
    assert costs["Inventory.count"]["status"] == "failed"
    assert costs["Inventory.count"]["reason"] == "price unknown for local/mystery-model"
    assert costs["Inventory.count"]["unknown_cost_calls"] == 1
    assert costs["Finance.reconcile"]["task_id"] == "Finance.reconcile"
    assert body["total"]["usd"] == pytest.approx(0.0274)
    assert body["total"]["calls"] == 4
    assert body["run"]["state"] == "success"
    assert body["run"]["outcome"] == "partial"
    assert body["run"]["duration_s"] == 60.0
    assert body["live"] is False
    # The run budget and the module budgets, with the share used.
    assert body["run_budget"] == {
        "spent_usd": pytest.approx(0.0274),
        "reserved_usd": 0.0,
        "limit_usd": 0.05,
        "pct": 54.8,
        "level": "ok",
    }
    modules = {m["module"]: m for m in body["modules"]}
    assert modules["Finance"]["limit_usd"] == 0.02
    assert modules["Finance"]["pct"] == 137.0
    assert modules["Finance"]["level"] == "over"
    assert modules["Inventory"]["limit_usd"] is None
    assert modules["Inventory"]["level"] == "none"
    assert "scope" not in str(body)  # internal scope keys stay internal


def test_run_view_while_running_shows_live_reservations(spent_store, store_url):
    call = CallScope(DAG, "manual__live+1:2", "Finance", "reconcile", "gpt-5-mini", "openai")
    BudgetGuard(spent_store).reserve(call, 0.25, BudgetLimits(), reservation_id="live-1")
    with make_client(spent_store, store_url) as client:
        body = client.get(f"/api/runs/{DAG}/{quote('manual__live+1:2', safe='')}").json()
    assert body["live"] is True
    assert body["run"]["state"] == "running"
    assert body["run_budget"]["reserved_usd"] == pytest.approx(0.25)
    assert body["run_budget"]["limit_usd"] == BUDGETS["run"]  # the workflow's budget, from its latest record
    agents = {a["agent"]: a for a in body["agents"]}  # the workflow's agents, from its latest record
    assert set(agents) == {"Finance.reconcile", "Finance.close_books", "Inventory.count"}
    assert agents["Finance.reconcile"]["reserved_usd"] == pytest.approx(0.25)
    assert agents["Finance.reconcile"]["status"] == "running"
    assert agents["Inventory.count"]["status"] == "not called yet"
    assert agents["Inventory.count"]["reason"] is None


def test_unknown_dag_and_unknown_run_say_so(client):
    typo = client.get(f"/api/runs/erp_month_ned/{R}")
    assert typo.status_code == 404
    assert typo.json()["unknown"] == "dag"
    assert "unknown DAG 'erp_month_ned'" in typo.json()["detail"]
    missing = client.get(f"/api/runs/{DAG}/manual__2026-01-01T00%3A00%3A00%2B00%3A00")
    assert missing.status_code == 404
    assert missing.json()["unknown"] == "run"
    assert "unknown run 'manual__2026-01-01T00:00:00+00:00'" in missing.json()["detail"]
    dag = client.get("/api/workflows/erp_month_ned")
    assert dag.status_code == 404
    assert dag.json()["unknown"] == "dag"


def test_a_raw_plus_in_a_run_id_is_not_a_space(client):
    # A '+' left unencoded in a path is a '+' (only query strings turn it into a space).
    assert client.get(f"/api/runs/{DAG}/{RUN}").json()["run_id"] == RUN
    assert client.get(f"/api/runs/{DAG}/{R}").json()["run_id"] == RUN


def _charge_today(store, usd: float):
    """One settled Finance.reconcile call of ``usd`` today, in run ``scheduled__today``; returns now."""
    now = _now(store)
    charge(
        store,
        run_id="scheduled__today",
        at=now,
        prefix="t",
        calls=[("Finance", "reconcile", "openai", "gpt-5-mini", 100, 10, 0, usd)],
    )
    return now


def test_workflow_view_budgets_spend_and_runs(spent_store, store_url):
    now = _charge_today(spent_store, 0.034)
    with make_client(spent_store, store_url) as client:
        body = client.get(f"/api/workflows/{DAG}").json()
    assert body["budgets"] == {**BUDGETS, "known": True}
    assert body["today"]["period"] == now.strftime("%Y-%m-%d")
    assert body["today"]["spent_usd"] == pytest.approx(0.034)
    assert body["today"]["limit_usd"] == 0.04
    assert body["today"]["pct"] == 85.0
    assert body["today"]["level"] == "warn"
    assert body["month"]["limit_usd"] == 1.0
    assert body["month"]["level"] == "ok"
    runs = {r["run_id"]: r for r in body["runs"]}
    assert runs[RUN]["outcome"] == "partial"
    assert runs[RUN]["recorded"] is True
    assert runs["scheduled__today"]["recorded"] is False
    assert runs["scheduled__today"]["state"] == "no result yet"
    assert len(body["daily"]) == 30
    assert body["daily"][-1]["day"] == now.strftime("%Y-%m-%d")
    assert body["daily"][-1]["spent_usd"] == pytest.approx(0.034)
    assert [a["agent"] for a in body["top_agents"]] == [
        "Finance.reconcile",
        "Finance.close_books",
        "Inventory.count",
    ]
    assert body["top_agents"][0]["runs"] == 2
    assert body["top_agents"][0]["cost_usd"] == pytest.approx(0.0374)
    assert [row["key"] for row in body["limits"]] == ["anthropic", "openai/gpt-5-mini"]


def test_overview_budget_percentages_limits_breakers_and_pauses(spent_store, store_url):
    _charge_today(spent_store, 0.03)
    policy = RateLimitPolicy(requests_per_minute=60, tokens_per_minute=100_000, max_concurrent=4)
    for tokens in (1200, 800):
        assert spent_store.acquire("openai/gpt-5-mini", policy.tiers(), tokens, max_concurrent=4).granted
    spent_store.penalize("anthropic", delay_s=120)
    spent_store.breaker_record("anthropic/claude-sonnet-4-5", False, BreakerConfig(failure_threshold=1))
    with make_client(spent_store, store_url) as client:
        body = client.get("/api/overview").json()
    assert body["empty"] is False
    assert body["currency"] == "USD"
    workflows = {w["dag_id"]: w for w in body["workflows"]}
    assert set(workflows) == {DAG, SECRET_DAG}
    today = workflows[DAG]["today"]
    assert today["spent_usd"] == pytest.approx(0.03)
    assert today["limit_usd"] == 0.04
    assert today["pct"] == 75.0
    assert today["level"] == "ok"
    assert workflows[DAG]["last_run"]["outcome"] == "partial"
    assert {(r["dag_id"], r["run_id"]) for r in body["runs"]} == {
        (DAG, RUN),
        (SECRET_DAG, RUN),
        (DAG, "scheduled__today"),
    }
    assert [m["model"] for m in body["top_models"]] == [
        "openai/gpt-5-mini",
        "anthropic/claude-sonnet-4-5",
        "local/mystery-model",
    ]
    assert body["top_models"][0]["cost_usd"] == pytest.approx(0.0034 + 0.0021 + 0.03)  # both DAGs' runs
    assert body["top_models"][2]["unknown_cost_calls"] == 1
    assert body["top_models"][2]["cost_usd"] == 0.0
    limits = {row["key"]: row for row in body["limits"]}
    mini = limits["openai/gpt-5-mini"]
    assert [(t["name"], t["used"], t["limit"], t["window_s"]) for t in mini["tiers"]] == [
        ("requests_per_minute", 2, 60, 60.0),
        ("tokens_per_minute", 2000, 100_000, 60.0),
    ]
    assert mini["tiers"][0]["pct"] == pytest.approx(3.3)
    assert mini["leases_held"] == 2
    assert mini["max_concurrent"] == 4
    assert mini["workflows"] == [DAG]
    assert limits["anthropic"]["paused"] is True
    assert 100 < limits["anthropic"]["resume_in_s"] <= 120
    assert body["pauses"] == [
        {
            "key": "anthropic",
            "paused_until_iso": limits["anthropic"]["paused_until_iso"],
            "resume_in_s": limits["anthropic"]["resume_in_s"],
        }
    ]
    assert body["breakers_open"] == [{"key": "anthropic/claude-sonnet-4-5", "state": "open"}]
    assert len(body["daily"]) == 30
    assert body["daily"][-1]["spent_usd"] == pytest.approx(0.03)


def test_overview_and_run_list_show_only_readable_dags(spent_store, store_url):
    with make_client(spent_store, store_url, user="fleet_viewer") as client:  # fleet view, no DAG
        body = client.get("/api/overview").json()
        assert body["workflows"] == []
        assert body["runs"] == []
        assert body["top_agents"] == []
        assert body["daily"]
        assert all(p["spent_usd"] == 0 for p in body["daily"])
    with make_client(spent_store, store_url, user="erp_reader") as client:
        runs = client.get("/api/runs").json()["runs"]
        assert {r["dag_id"] for r in runs} == {DAG}
        assert client.get(f"/api/runs?dag_id={SECRET_DAG}").json()["runs"] == []
    with make_client(spent_store, store_url) as client:
        assert {r["dag_id"] for r in client.get("/api/runs").json()["runs"]} == {DAG, SECRET_DAG}
        assert client.get("/api/runs?limit=0").status_code == 422


def test_empty_store_says_so(store, store_url):
    with make_client(store, store_url) as client:
        body = client.get("/api/overview").json()
        assert body["empty"] is True
        assert body["workflows"] == []
        assert body["limits"] == []
        assert client.get("/api/limits").json()["limits"] == []
        assert client.get(f"/api/runs/{DAG}/{R}").json()["unknown"] == "dag"


def test_limits_list_and_unknown_key(spent_store, store_url):
    with make_client(spent_store, store_url) as client:
        rows = client.get("/api/limits").json()["limits"]
        assert [r["key"] for r in rows] == ["anthropic", "openai/gpt-5-mini"]
        assert rows[0]["tiers"] == [
            {
                "name": "requests_per_hour",
                "unit": "requests",
                "limit": 1000,
                "used": 0,
                "window_s": 3600.0,
                "pct": 0.0,
                "level": "ok",
            }
        ]
        one = client.get("/api/limits/openai/gpt-5-mini").json()
        assert one["configured"] is True
        assert one["leases_held"] == 0
        assert one["breaker"] == "closed"
        unknown = client.get("/api/limits/openai/gpt-5-mni")
        assert unknown.status_code == 404
        assert "unknown rate-limit key 'openai/gpt-5-mni'" in unknown.json()["detail"]
        breaker = client.get("/api/breakers/openai/gpt-5-mni")
        assert breaker.status_code == 404
        assert breaker.json()["unknown"] == "key"


def test_a_workflow_without_a_record_has_unknown_budgets(store, store_url):
    charge(store, dag_id="new_flow", calls=CALLS[:1])
    with make_client(store, store_url) as client:
        body = client.get("/api/workflows/new_flow").json()
    assert body["budgets"]["known"] is False
    assert body["today"]["limit_usd"] is None
    assert body["today"]["level"] == "none"
    assert body["last_run"] is None


def test_a_newer_record_replaces_the_budgets_shown(spent_store, store_url):
    record_run(
        spent_store,
        run_id="manual__later",
        budgets={**BUDGETS, "daily": 10.0},
        ended=datetime.now(timezone.utc).timestamp(),
    )
    with make_client(spent_store, store_url) as client:
        body = client.get(f"/api/workflows/{DAG}").json()
    assert body["budgets"]["daily"] == 10.0
    assert body["last_run"]["run_id"] == "manual__later"
