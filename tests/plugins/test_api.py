"""The Operations API against real stores (SQLite file and redis-server): shapes, errors, no secrets."""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from airflow_agent_provider.cost.budget import BudgetGuard, BudgetLimits, CallScope
from airflow_agent_provider.plugins.api import create_app, masked_store_url
from airflow_agent_provider.stores.breaker_api import BreakerConfig
from airflow_agent_provider.stores.config import store_from_url
from tests.plugins.conftest import AT, DAG, RUN, TEST_ACCESS, charge, make_client

TOTALS_KEYS = {"calls", "input_tokens", "output_tokens", "cached_input_tokens", "usd", "unknown_cost_calls"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_costs_are_the_ledger_summary(client):
    response = client.get(f"/api/runs/{DAG}/{RUN}/costs")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"dag_id", "run_id", "total", "modules", "agents", "run_scope"}
    assert (body["dag_id"], body["run_id"]) == (DAG, RUN)
    assert body["total"] == {
        "calls": 4,
        "input_tokens": 7_100,
        "output_tokens": 1_350,
        "cached_input_tokens": 500,
        "usd": pytest.approx(0.0274),
        "unknown_cost_calls": 1,
    }
    assert set(body["modules"]) == {"Finance", "Inventory"}
    assert set(body["agents"]) == {"Finance.reconcile", "Finance.close_books", "Inventory.count"}
    assert all(set(t) == TOTALS_KEYS for t in [*body["modules"].values(), *body["agents"].values()])
    assert body["agents"]["Finance.reconcile"]["calls"] == 2
    assert body["agents"]["Finance.reconcile"]["usd"] == pytest.approx(0.0034)
    assert body["agents"]["Inventory.count"] == {
        "calls": 1,
        "input_tokens": 100,
        "output_tokens": 50,
        "cached_input_tokens": 0,
        "usd": 0.0,
        "unknown_cost_calls": 1,
    }
    assert body["run_scope"] == {
        "scope": f"run:{DAG}:{RUN}",
        "spent_usd": pytest.approx(0.0274),
        "reserved_usd": 0.0,
        "calls": 4,
    }
    assert response.headers["cache-control"] == "no-store"


def test_live_reservation_shows_before_the_first_settlement(store, store_url):
    call = CallScope(DAG, "running", "Finance", "reconcile", "gpt-5-mini", "openai", at=AT)
    BudgetGuard(store).reserve(call, 0.5, BudgetLimits(), reservation_id="live")
    with make_client(store, store_url) as client:
        body = client.get(f"/api/runs/{DAG}/running/costs").json()
    assert body["total"]["calls"] == 0
    assert body["run_scope"]["reserved_usd"] == pytest.approx(0.5)


def test_unknown_run_is_404(client):
    response = client.get(f"/api/runs/{DAG}/no_such_run/costs")
    assert response.status_code == 404
    assert response.json() == {"detail": f"no spend recorded for run 'no_such_run' of DAG '{DAG}'"}
    assert client.get(f"/api/runs/{DAG}/no_such_run/snapshot").status_code == 404
    assert client.get("/api/nothing").status_code == 404


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (f"/api/runs/{'d' * 251}/{RUN}/costs", "dag_id"),
        (f"/api/runs/bad%20dag/{RUN}/costs", "dag_id"),
        (f"/api/runs/%2E%2E/{RUN}/costs", "dag_id"),
        (f"/api/runs/{DAG}/%3Cscript%3E/snapshot", "run_id"),
        (f"/api/workflows/{DAG}/spend?day=2026-13-01", "day"),
        (f"/api/workflows/{DAG}/spend?month=26-11", "month"),
        ("/api/limits/openai/%2E%2E/%2E%2E/etc", "key"),
        ("/api/breakers/openai//gpt", "key"),
        (f"/api/breakers/{'k' * 201}", "key"),
    ],
)
def test_invalid_input_is_422_with_a_clear_message(client, path, name):
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"invalid {name}: ")


def test_only_read_endpoints(client):
    assert client.post(f"/api/runs/{DAG}/{RUN}/costs").status_code == 405
    assert client.delete("/api/breakers/openai/gpt-5-mini").status_code == 405
    methods = {m for route in client.app.routes for m in (getattr(route, "methods", None) or ())}
    assert methods <= {"GET", "HEAD"}


def test_workflow_spend_for_a_day_and_month(client):
    body = client.get(f"/api/workflows/{DAG}/spend?day=2026-11-30&month=2026-11").json()
    assert set(body) == {"dag_id", "store_time", "store_time_iso", "day", "month"}
    assert body["day"] == {
        "period": "2026-11-30",
        "scope": f"day:{DAG}:2026-11-30",
        "spent_usd": pytest.approx(0.0274),
        "reserved_usd": 0.0,
        "calls": 4,
    }
    assert body["month"]["scope"] == f"month:{DAG}:2026-11"
    assert body["month"]["spent_usd"] == pytest.approx(0.0274)


def test_workflow_spend_defaults_to_today_on_the_store_clock(spent_store, store_url):
    from datetime import datetime, timezone

    now = datetime.fromtimestamp(spent_store.store_time(), tz=timezone.utc)
    charge(
        spent_store,
        run_id="today",
        at=now,
        calls=[("Finance", "a", "openai", "gpt-5-mini", 10, 10, 0, 0.5)],
        prefix="today",
    )
    with make_client(spent_store, store_url) as client:
        body = client.get(f"/api/workflows/{DAG}/spend").json()
    assert body["day"]["period"] == now.strftime("%Y-%m-%d")
    assert body["day"]["spent_usd"] == pytest.approx(0.5)
    assert body["month"]["period"] == now.strftime("%Y-%m")
    typo = client.get("/api/workflows/other_dag/spend")
    assert typo.status_code == 404
    assert typo.json()["unknown"] == "dag"


def test_limits_pause_and_breaker_state(client, spent_store):
    spent_store.penalize("openai/gpt-5-mini", delay_s=60)
    body = client.get("/api/limits/openai/gpt-5-mini").json()
    assert body["key"] == "openai/gpt-5-mini"
    assert body["paused"] is True
    assert 55 < body["resume_in_s"] <= 60
    assert body["paused_until"] == pytest.approx(body["store_time"] + 60, abs=5)
    assert body["paused_until_iso"].endswith("+00:00")
    unknown = client.get("/api/limits/openai")  # no workflow configures it and the store never saw it
    assert unknown.status_code == 404
    assert unknown.json()["unknown"] == "key"
    assert client.get("/api/limits/anthropic").json()["paused"] is False  # configured, idle

    spent_store.breaker_record("anthropic/claude-sonnet-4-5", False, BreakerConfig(failure_threshold=1))
    assert client.get("/api/breakers/anthropic/claude-sonnet-4-5").json()["state"] == "open"
    closed = client.get("/api/breakers/openai/gpt-5-mini").json()
    assert set(closed) == {"key", "state", "store_time", "store_time_iso"}
    assert closed["state"] == "closed"


def test_snapshot_endpoint(client, spent_store):
    spent_store.breaker_record("anthropic/claude-sonnet-4-5", False, BreakerConfig(failure_threshold=1))
    body = client.get(f"/api/runs/{DAG}/{RUN}/snapshot").json()
    assert body["found"] is True
    assert [m["key"] for m in body["models"]] == [
        "anthropic/claude-sonnet-4-5",
        "local/mystery-model",
        "openai/gpt-5-mini",
    ]
    assert body["models"][0]["breaker"] == "open"


def test_store_info_is_healthy_and_masked(client, store_url, store_kind):
    body = client.get("/api/store").json()
    assert body["healthy"] is True
    assert body["kind"] == store_kind
    assert body["url"] == store_url
    assert body["latency_ms"] >= 0
    assert body["store_time"] == pytest.approx(time.time(), abs=60)


def test_store_location_only_for_who_may_read_configuration(spent_store, store_url, store_kind):
    with make_client(spent_store, store_url, user="fleet_viewer") as client:
        response = client.get("/api/store")
    body = response.json()
    assert body["healthy"] is True
    assert body["kind"] == store_kind
    assert body["url"] is None
    location = urlsplit(store_url).netloc or urlsplit(store_url).path  # redis host:port, or the SQLite file
    assert location not in response.text


def test_unreachable_redis_is_503_without_the_password():
    url = f"redis://ops:s3cr3t-pw@127.0.0.1:{closed_port()}/0"
    store = store_from_url(url)
    try:
        with make_client(store, url) as client:
            info = client.get("/api/store")
            costs = client.get(f"/api/runs/{DAG}/{RUN}/costs")
            breaker = client.get("/api/breakers/openai/gpt-5-mini")
        with make_client(store, url, user="fleet_viewer") as client:
            hidden = client.get("/api/store")
    finally:
        store.close()
    assert info.status_code == 503
    assert info.json()["healthy"] is False
    assert info.json()["kind"] == "redis"
    assert info.json()["url"].startswith("redis://ops:***@127.0.0.1:")
    for response in (costs, breaker):
        assert response.status_code == 503
        # The Redis budget reads raise redis' ConnectionError, the breaker reads StoreUnavailable: both are 503.
        assert response.json()["detail"].startswith("the agent provider store is unavailable (")
        assert "Connection refused" in response.json()["detail"]
    for response in (info, costs, breaker, hidden):
        assert "s3cr3t" not in response.text
        assert "Traceback" not in response.text
    # Who may not read the configuration learns that the store is down, not where it is.
    assert hidden.status_code == 503
    assert hidden.json()["url"] is None
    assert hidden.json()["healthy"] is False
    assert re.fullmatch(
        r"the agent provider store is unavailable \(\w+\); see the API server log", hidden.json()["detail"]
    )
    assert "127.0.0.1" not in hidden.text


def test_store_that_cannot_be_opened_is_503(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    url = f"sqlite:///{blocker}/sub/store.db"
    with TestClient(
        create_app(lambda: store_from_url(url), lambda: url, access=TEST_ACCESS),
        headers={"Authorization": "Bearer admin"},
    ) as client:
        for path in ("/api/store", f"/api/workflows/{DAG}/spend", "/api/limits/openai"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert response.json()["detail"].startswith("the agent provider store cannot be opened (")


def test_default_store_comes_from_airflow_settings(tmp_path, monkeypatch):
    from airflow_agent_provider.hooks.store import reset_store

    db = tmp_path / "configured.db"
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__STORE_URL", f"sqlite:///{db}")
    reset_store()
    try:
        store = store_from_url(f"sqlite:///{db}")
        charge(store)
        store.close()
        with TestClient(create_app(access=TEST_ACCESS), headers={"Authorization": "Bearer admin"}) as client:
            assert client.get("/api/store").json()["url"] == f"sqlite:///{db}"
            assert client.get(f"/api/runs/{DAG}/{RUN}/costs").json()["total"]["calls"] == 4
    finally:
        reset_store()


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://u:p%40ss@h:6380/1?prefix=aap:", "rediss://u:***@h:6380/1?prefix=aap:"),
        ("redis://h:6379/0?password=pw&prefix=x:", "redis://h:6379/0?password=***&prefix=x:"),
        ("sqlite:////var/lib/airflow/agent_provider.db", "sqlite:////var/lib/airflow/agent_provider.db"),
    ],
)
def test_masked_store_url(url, masked):
    assert masked_store_url(url) == masked
