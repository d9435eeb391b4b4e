"""run_snapshot on a real store: ledger summary, live reservations, breaker and pauses per model."""

from __future__ import annotations

import pytest

from airflow_agent_provider.cost.budget import BudgetGuard, BudgetLimits, CallScope
from airflow_agent_provider.observability.snapshots import format_snapshot, run_snapshot
from airflow_agent_provider.stores.breaker_api import BreakerConfig
from tests.plugins.conftest import AT, DAG, RUN, charge


def test_snapshot_combines_ledger_breakers_and_pauses(store):
    charge(store)
    BudgetGuard(store).reserve(
        CallScope(DAG, RUN, "Finance", "reconcile", "gpt-5-mini", "openai", at=AT),
        0.25,
        BudgetLimits(),
        reservation_id="still-running",
    )
    store.breaker_record("anthropic/claude-sonnet-4-5", False, BreakerConfig(failure_threshold=1))
    store.penalize("openai", delay_s=30)

    snap = run_snapshot(store, DAG, RUN)
    assert snap["version"] == 1
    assert snap["found"] is True
    assert snap["costs"]["total"]["calls"] == 4
    assert snap["run_scope"]["reserved_usd"] == pytest.approx(0.25)
    models = {m["key"]: m for m in snap["models"]}
    assert set(models) == {"openai/gpt-5-mini", "anthropic/claude-sonnet-4-5", "local/mystery-model"}
    assert models["anthropic/claude-sonnet-4-5"]["breaker"] == "open"
    assert models["openai/gpt-5-mini"] | {"limits": None} == {
        "provider": "openai",
        "model": "gpt-5-mini",
        "key": "openai/gpt-5-mini",
        "calls": 2,
        "input_tokens": 3_000,
        "output_tokens": 500,
        "usd": pytest.approx(0.0034),
        "unknown_cost_calls": 0,
        "breaker": "closed",
        "limits": None,
    }
    model_pause, provider_pause = models["openai/gpt-5-mini"]["limits"]
    assert model_pause["key"] == "openai/gpt-5-mini"
    assert model_pause["paused"] is False
    assert provider_pause["key"] == "openai"
    assert provider_pause["paused"] is True
    assert 25 < provider_pause["resume_in_s"] <= 30
    assert models["local/mystery-model"]["unknown_cost_calls"] == 1

    text = format_snapshot(snap)
    assert "Finance.reconcile" in text
    assert "TOTAL" in text
    assert "model anthropic/claude-sonnet-4-5: breaker open" in text
    assert "openai paused" in text
    assert "reserved by running calls: $0.250000" in text


def test_snapshot_of_a_run_without_spend(store):
    snap = run_snapshot(store, DAG, "nothing")
    assert snap["found"] is False
    assert snap["models"] == []
    assert snap["costs"]["total"]["calls"] == 0
    assert "no spend recorded" in format_snapshot(snap)
