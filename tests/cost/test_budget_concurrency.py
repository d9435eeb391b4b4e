"""Zero overshoot: 200 concurrent calls against one budget, by threads and by processes.

Every call reserves a random maximum cost against its agent's limit, the run budget and an
unlimited day scope; a granted call settles a random real cost no higher than its reservation
(a few release instead, as a failed call would). Afterwards no scope has spent more than its
limit, and every refusal was necessary: at that moment spent + reserved + amount exceeded the
refused scope's limit. All-or-none shows as the unlimited day scope spending exactly the run's.
"""

from __future__ import annotations

import math
import multiprocessing
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_agent_provider.stores.config import store_from_url

CALLS = 200
RUN_BUDGET = 1.0
AGENT_LIMITS = {"agent:d:r:M.a": 0.45, "agent:d:r:M.b": 0.8}
RUN = "run:d:r"
DAY = "day:d:2026-11-24"


def _one_call(store, i: int) -> tuple[str, float, float, float, float, str | None]:
    rng = random.Random(i)
    agent = "agent:d:r:M.a" if i % 2 else "agent:d:r:M.b"
    amount = rng.uniform(0.005, 0.05)
    scopes = [(agent, AGENT_LIMITS[agent]), (RUN, RUN_BUDGET), (DAY, math.inf)]
    result = store.budget_reserve(f"call-{i}", scopes, amount, 120)
    if not result.granted:
        return ("refused", amount, result.spent, result.reserved, result.limit, result.refused_scope)
    if i % 10 == 0:
        store.budget_release(f"call-{i}")
        return ("released", amount, 0.0, 0.0, 0.0, None)
    store.budget_settle(f"call-{i}", rng.uniform(0.0, amount))
    return ("settled", amount, 0.0, 0.0, 0.0, None)


def _process_chunk(url: str, indices: list[int]) -> list[tuple]:
    store = store_from_url(url)
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda i: _one_call(store, i), indices))
    finally:
        store.close()


def _check(store, outcomes) -> None:
    refusals = [o for o in outcomes if o[0] == "refused"]
    assert refusals, "the test must drive the budget to refusals"
    assert len([o for o in outcomes if o[0] == "settled"]) > 10
    for _, amount, spent, reserved, limit, scope in refusals:
        assert scope in (RUN, *AGENT_LIMITS)
        assert spent + reserved + amount > limit
    assert store.budget_spent(RUN) <= RUN_BUDGET
    for agent, limit in AGENT_LIMITS.items():
        assert store.budget_spent(agent) <= limit
    assert store.budget_spent(DAY) == pytest.approx(store.budget_spent(RUN), abs=1e-9)
    assert store.budget_reserved(RUN) == 0.0
    assert store.budget_totals(RUN).calls == len([o for o in outcomes if o[0] == "settled"])


def test_no_overshoot_with_threads(budget_store_factory):
    store = budget_store_factory()
    # One store per thread pool is how a worker shares it; SQLite opens one connection per thread.
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda i: _one_call(store, i), range(CALLS)))
    _check(store, outcomes)


def test_no_overshoot_with_processes(budget_store_factory):
    store = budget_store_factory()  # creates the schema before the children start
    ctx = multiprocessing.get_context("spawn")
    chunks = [list(range(k, CALLS, 8)) for k in range(8)]
    with ctx.Pool(4) as pool:
        outcomes = [
            o
            for part in pool.starmap(_process_chunk, [(budget_store_factory.url, c) for c in chunks])
            for o in part
        ]
    assert len(outcomes) == CALLS
    _check(store, outcomes)
