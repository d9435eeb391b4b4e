"""Fixtures for the Operations app: a real store with spend written through the real budget API.

``spent_store`` is the shared ``store`` fixture (a fresh SQLite file, or a unique prefix on the
session's redis-server) holding two runs' worth of calls that went through
``BudgetGuard.reserve(...).settle(...)``, exactly as the guarded pipeline writes them, and the run
records their result tasks would write (``record_run``: budgets and rate limits included).

In-process tests authorize through ``TEST_ACCESS``: an ``Access`` policy with the same shape as
Airflow's (FastAPI dependencies raising 401/403) over a fixed table of users named by an
``Authorization: Bearer <user>`` header. It checks what this app is responsible for: which
permission each route asks for, with which DAG id, before anything is read. Airflow's own
dependencies are tested against a real ``airflow api-server`` in ``test_api_server_auth.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from fastapi import Depends, HTTPException, Request
from fastapi.testclient import TestClient

from airflow_agent_provider.cost.budget import BudgetGuard, BudgetLimits, CallScope
from airflow_agent_provider.cost.pricing import CallCost
from airflow_agent_provider.llm.types import Usage
from airflow_agent_provider.plugins.api import Access, create_app

DAG = "erp_month_end"
#: A DAG whose runs only ``admin`` may read.
SECRET_DAG = "payroll_close"
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
        held = guard.reserve(
            scope,
            None if usd is None else usd * 2,
            BudgetLimits(),
            reservation_id=f"{prefix}{i}|{provider}/{model}",
        )
        held.settle(CallCost(usd, "override" if usd is not None else "unknown"), Usage(inp, out, cached))
        total += usd or 0.0
    return total


@dataclass(frozen=True)
class Grants:
    """What a test user may read: ``dags`` (``None``: every DAG), the fleet view, the store's location."""

    dags: frozenset[str] | None
    fleet: bool
    config: bool


USERS = {
    "admin": Grants(dags=None, fleet=True, config=True),
    "erp_reader": Grants(dags=frozenset({DAG}), fleet=False, config=False),
    "fleet_viewer": Grants(dags=frozenset(), fleet=True, config=False),
    "nobody": Grants(dags=frozenset(), fleet=False, config=False),
}


def _user(request: Request) -> Grants:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "Not authenticated")
    if token not in USERS:
        raise HTTPException(403, "Invalid JWT token")
    return USERS[token]


def _authenticated(user: Grants = Depends(_user)) -> None:
    pass


def _dag_runs(request: Request, user: Grants = Depends(_user)) -> None:
    if user.dags is not None and request.path_params.get("dag_id") not in user.dags:
        raise HTTPException(403, "Forbidden")


def _fleet(user: Grants = Depends(_user)) -> None:
    if not user.fleet:
        raise HTTPException(403, "Forbidden")


def _store_details(user: Grants = Depends(_user)) -> bool:
    return user.config


def _readable_dags(user: Grants = Depends(_user)):
    return None if user.dags is None else user.dags


TEST_ACCESS = Access(
    authenticated=_authenticated,
    dag_runs=_dag_runs,
    fleet=_fleet,
    store_details=_store_details,
    login_url=lambda request: "/auth/login?next=" + request.url.path,
    readable_dags=_readable_dags,
)


def make_client(store, url, user: str | None = "admin") -> TestClient:
    """A TestClient of the app over ``store`` that sends ``Authorization: Bearer <user>`` (none if ``None``)."""
    headers = {"Authorization": f"Bearer {user}"} if user else {}
    return TestClient(create_app(lambda: store, lambda: url, access=TEST_ACCESS), headers=headers)


#: The workflow's limits as its result task records them with the run (see ``record_run``).
BUDGETS = {"run": 0.05, "daily": 0.04, "monthly": 1.0, "modules": {"Finance": 0.02, "Inventory": None}}
RATE_LIMITS = [
    {
        "key": "openai/gpt-5-mini",
        "limits": {"requests_per_minute": 60, "tokens_per_minute": 100_000, "max_concurrent": 4},
    },
    {"key": "anthropic", "limits": {"requests_per_hour": 1000}},
]


def record_run(
    store,
    *,
    dag_id=DAG,
    run_id=RUN,
    outcome="partial",
    cost=0.0274,
    budgets=BUDGETS,
    rate_limits=RATE_LIMITS,
    started=None,
    ended=None,
):
    """The run record a ``workflow_result`` task writes (stores/runs_api.py), for a charged run."""
    from airflow_agent_provider.stores.runs_api import RunRecord

    ended = AT.timestamp() + 600 if ended is None else ended
    agents = {
        "Finance.reconcile": {
            "task_id": "Finance.reconcile",
            "module": "Finance",
            "agent": "reconcile",
            "critical": True,
            "status": "success",
            "reason": None,
            "answered_by": "openai/gpt-5-mini",
            "fallbacks_used": [],
            "duration_s": 3.5,
            "cost_usd": 0.0034,
        },
        "Finance.close_books": {
            "task_id": "Finance.close_books",
            "module": "Finance",
            "agent": "close_books",
            "critical": True,
            "status": "success",
            "reason": None,
            "answered_by": "anthropic/claude-sonnet-4-5",
            "fallbacks_used": ["anthropic/claude-sonnet-4-5"],
            "duration_s": 9.0,
            "cost_usd": 0.024,
        },
        "Inventory.count": {
            "task_id": "Inventory.count",
            "module": "Inventory",
            "agent": "count",
            "critical": False,
            "status": "failed",
            "reason": "price unknown for local/mystery-model",
            "answered_by": None,
            "fallbacks_used": [],
            "duration_s": 1.0,
            "cost_usd": None,
        },
    }
    store.run_record(
        RunRecord(
            dag_id=dag_id,
            run_id=run_id,
            workflow=dag_id,
            state="failed" if outcome == "failed" else "success",
            outcome=outcome,
            started_at=(ended - 60) if started is None else started,
            ended_at=ended,
            cost_usd=cost,
            cost_complete=False,
            budgets=budgets,
            rate_limits=rate_limits,
            agents=agents,
        )
    )


@pytest.fixture
def spent_store(store):
    charge(store)
    charge(store, dag_id=SECRET_DAG, run_id=RUN, calls=CALLS[:1], prefix="s")
    record_run(store)
    record_run(store, dag_id=SECRET_DAG, outcome="success", cost=0.0021, rate_limits=[])
    return store


@pytest.fixture
def client(spent_store, store_url):
    with make_client(spent_store, store_url) as test_client:
        yield test_client
