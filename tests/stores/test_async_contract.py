"""The async twins of every store operation keep the sync contract, on SQLite and Redis (``store``).

They are what triggers use on the triggerer's event loop: the Redis store runs the same Lua scripts
through redis-py's asyncio client (one client per event loop, reused), the SQLite store runs its sync
operation on the stores' own thread pool. Both sides see one state: a grant taken async counts for a
sync acquire and the other way round.
"""

from __future__ import annotations

import asyncio
import math
import threading

import pytest

from airflow_agent_provider.stores import Tier
from airflow_agent_provider.stores.breaker_api import BreakerConfig
from airflow_agent_provider.stores.budget_api import LedgerEntry
from airflow_agent_provider.stores.offload import run_blocking

T = 1_800_000_000.0
RPW = Tier("rpw", 3, 10.0)
TPW = Tier("tpw", 100, 10.0, "tokens")
RUN = "run:d:r1"
DAY = "day:d:2026-12-02"
KEY = "openai/gpt-5-mini"


def run(store, coro_fn):
    """Run ``coro_fn()`` on a fresh loop and close what the store opened for that loop."""

    async def main():
        try:
            return await coro_fn()
        finally:
            await store.aclose()

    return asyncio.run(main())


def test_rate_limit_twins(store):
    async def scenario():
        grants = [await store.aacquire("k", [RPW, TPW], 30, now=T + i) for i in range(3)]
        assert all(g.granted for g in grants)
        refused = await store.aacquire("k", [RPW, TPW], 0, now=T + 3)
        assert not refused.granted
        assert refused.reason == "rpw"
        assert refused.wait_s == pytest.approx(7.0)
        never = await store.aacquire("k2", [TPW], 101, now=T)
        assert math.isinf(never.wait_s)
        assert await store.asettle("k", grants[0].grant_id, 10) == -20
        assert await store.asettle("k", "no-such-grant", 10) == 0
        lease = await store.aacquire("c", [], max_concurrent=1, lease_ttl_s=60, now=T)
        assert not (await store.aacquire("c", [], max_concurrent=1, lease_ttl_s=60, now=T + 1)).granted
        assert await store.arelease("c", lease.grant_id) is True
        assert await store.arelease("c", lease.grant_id) is False
        now = await store.astore_time()
        assert await store.apaused_until("p") is None
        until = await store.apenalize("p", delay_s=30)
        assert until == pytest.approx(now + 30, abs=1.0)
        assert await store.apaused_until("p") == pytest.approx(until)
        with pytest.raises(ValueError, match="exactly one of until or delay_s"):
            await store.apenalize("p")
        return grants

    grants = run(store, scenario)
    # One state for both sides: the sync API sees what the async one took.
    assert not store.acquire("k", [RPW], now=T + 3).granted
    assert store.settle("k", grants[1].grant_id, 30) == 0
    assert store.acquire("c", [], max_concurrent=1, lease_ttl_s=60, now=T + 2).granted
    assert store.paused_until("p") is not None


def test_concurrent_async_acquires_are_exact(store):
    tier = Tier("rpm", 50, 60.0)

    async def scenario():
        grants = await asyncio.gather(*(store.aacquire("fleet", [tier], now=T) for _ in range(200)))
        return sum(g.granted for g in grants)

    assert run(store, scenario) == 50


def test_budget_twins(store):
    entry = LedgerEntry("c1", "d", "r1", "M", "a", "gpt-5-mini", "openai", 100, 20, 0, 0.2, "genai-prices")

    async def scenario():
        first = await store.abudget_reserve("c1", [(RUN, 1.0), (DAY, math.inf)], 0.6, 60)
        assert first.granted
        assert first.reserved == pytest.approx(0.6)
        refused = await store.abudget_reserve("c2", [(RUN, 1.0)], 0.5, 60)
        assert (refused.granted, refused.refused_scope) == (False, RUN)
        assert (await store.abudget_reserve("c1", [(RUN, 1.0)], 0.6, 60)).duplicate
        assert await store.abudget_settle("c1", 0.2, [entry]) is True
        assert await store.abudget_settle("c1", 0.2, [entry]) is False  # a retry never pays twice
        assert (await store.abudget_reserve("c3", [(RUN, 1.0)], 0.7, 60)).granted
        assert await store.abudget_release("c3") is True
        assert await store.abudget_release("c3") is False
        totals = await store.abudget_totals(RUN)
        assert (totals.spent, totals.reserved, totals.calls) == (pytest.approx(0.2), 0.0, 1)
        rows = await store.aledger_entries("d", "r1")
        assert [(e.entry_id, e.usd, e.reservation_id) for e in rows] == [("c1", 0.2, "c1")]
        assert rows[0].ts is not None  # filled by the store clock

    run(store, scenario)
    assert store.budget_spent(RUN) == pytest.approx(0.2)
    assert store.budget_settle("c1", 0.2) is False


def test_breaker_twins(store):
    cfg = BreakerConfig(failure_threshold=2, reset_timeout_s=0.2, half_open_max_calls=1)

    async def scenario():
        assert await store.abreaker_state(KEY) == "closed"
        assert (await store.abreaker_allow(KEY, cfg)).allowed
        assert await store.abreaker_record(KEY, False, cfg) == "closed"
        assert await store.abreaker_record(KEY, False, cfg) == "open"
        refused = await store.abreaker_allow(KEY, cfg)
        assert (refused.allowed, refused.state) == (False, "open")
        assert refused.retry_in_s > 0
        await asyncio.sleep(0.3)
        assert await store.abreaker_state(KEY) == "half_open"
        trial = await store.abreaker_allow(KEY, cfg)
        assert trial.allowed
        assert trial.trial_id
        assert not (await store.abreaker_allow(KEY, cfg)).allowed
        await store.abreaker_release(KEY, trial.trial_id)
        trial = await store.abreaker_allow(KEY, cfg)
        assert await store.abreaker_record(KEY, True, cfg, trial_id=trial.trial_id) == "closed"
        await store.abreaker_record(KEY, False, cfg)
        await store.abreaker_reset(KEY)
        assert await store.abreaker_state(KEY) == "closed"
        await store.aping()

    run(store, scenario)
    assert store.breaker_state(KEY) == "closed"


def test_redis_async_side_has_its_own_client_per_loop(store, store_kind, redis_server):
    if store_kind != "redis":
        # The SQLite twins run on the stores' own pool, not on the loop's default executor.
        name = asyncio.run(run_blocking(lambda: threading.current_thread().name))
        assert name.startswith("aap-store")
        return
    import redis

    async def clients():
        first = store.connection.aclient()
        await store.aacquire("k", [RPW], now=T)
        assert store.connection.aclient() is first  # reused by every operation on this loop
        return first

    async def keep():
        return store.connection.aclient()

    one = asyncio.run(clients())
    other = asyncio.run(keep())
    assert one is not other  # a client is bound to its loop

    # The async operations do not go through the sync client at all: break it and they still work.
    store.connection.client = redis.Redis(host="127.0.0.1", port=1)
    assert run(store, lambda: store.aacquire("k", [RPW], now=T + 1)).granted


def test_async_on_unreachable_redis_is_store_unavailable():
    from airflow_agent_provider.stores import StoreUnavailable, store_from_url
    from tests.fixtures.redis_server import free_port

    store = store_from_url(f"redis://127.0.0.1:{free_port()}/0")

    async def scenario():
        with pytest.raises(StoreUnavailable):
            await store.aacquire("k", [RPW])
        with pytest.raises(StoreUnavailable):
            await store.abudget_reserve("c", [(RUN, 1.0)], 0.1, 60)
        with pytest.raises(StoreUnavailable):
            await store.abreaker_allow(KEY, BreakerConfig())
        with pytest.raises(StoreUnavailable):
            await store.aping()

    run(store, scenario)
    store.close()
