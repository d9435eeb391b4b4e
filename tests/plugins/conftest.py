"""Fixtures for the Operations app: a real store with spend written through the real budget API.

``spent_store`` is the shared ``store`` fixture (a fresh SQLite file, or a unique prefix on the
session's redis-server) holding two runs' worth of calls that went through
``BudgetGuard.reserve(...).settle(...)``, exactly as the guarded pipeline writes them.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from airflow_agent_provider.cost.budget import BudgetGuard, BudgetLimits, CallScope
from airflow_agent_provider.cost.pricing import CallCost
from airflow_agent_provider.llm.types import Usage
from airflow_agent_provider.plugins.api import create_app

DAG = "erp_month_end"
RUN = "manual__2026-11-30T23:00:00+00:00"
AT = datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc)

#: (module, agent, provider, model, input, output, cached, usd or None for an unknown price)
CALLS = [
    ("Finance", "reconcile", "openai", "gpt-5-mini", 2_000, 300, 500, 0.0021),
    ("Finance", "reconcile", "openai", "gpt-5-mini", 1_000, 200, 0, 0.0013),
    ("Finance", "close_books", "anthropic", "claude-sonnet-4-5", 4_000, 800, 0, 0.024),
    ("Inventory", "count", "local", "mystery-model", 100, 50, 0, None),
]


def charge(store, *, dag_id=DAG, run_id=RUN, at=AT, calls=CALLS, prefix="c"):
    """Reserve and settle every call through the budget engine; returns the charged total USD."""
    guard = BudgetGuard(store)
    total = 0.0
    for i, (module, agent, provider, model, inp, out, cached, usd) in enumerate(calls):
        scope = CallScope(dag_id, run_id, module, agent, model, provider, at=at)
        held = guard.reserve(scope, None if usd is None else usd * 2, BudgetLimits(),
                             reservation_id=f"{prefix}{i}|{provider}/{model}")
        held.settle(CallCost(usd, "override" if usd is not None else "unknown"), Usage(inp, out, cached))
        total += usd or 0.0
    return total


@pytest.fixture
def spent_store(store):
    charge(store)
    return store


@pytest.fixture
def client(spent_store, store_url):
    with TestClient(create_app(lambda: spent_store, lambda: store_url)) as test_client:
        yield test_client
