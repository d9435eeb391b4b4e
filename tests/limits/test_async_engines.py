"""The engines' async twins (what triggers call) on both stores: RateLimiter/Permit, BudgetGuard/
Reservation and CircuitBreaker, each against the same state as their sync side."""

from __future__ import annotations

import asyncio

import pytest

from airflow_agent_provider.cost.budget import BudgetExceeded, BudgetGuard, BudgetLimits, CallScope
from airflow_agent_provider.cost.pricing import CallCost
from airflow_agent_provider.limits import RateLimiter, RateLimitTimeout
from airflow_agent_provider.llm.types import Usage
from airflow_agent_provider.resilience.breaker import BreakerConfig, CircuitBreaker, CircuitOpenError
from tests.limits._short import short_policy


def _run(store, coro_fn):
    async def main():
        try:
            return await coro_fn()
        finally:
            await store.aclose()

    return asyncio.run(main())


def test_limiter_twins(store):
    limiter = RateLimiter(store)
    policy = short_policy(2, 30.0)

    async def scenario():
        first = await limiter.aacquire("k", policy, 10)
        await first.asettle(4)
        assert first.settled_tokens == 4
        assert await limiter.atry_acquire("k", policy) is not None
        assert await limiter.atry_acquire("k", policy) is None
        with pytest.raises(RateLimitTimeout):
            await limiter.aacquire("k", policy, timeout=0.1)
        until = await limiter.apause("other", 20)
        assert await store.apaused_until("other") == pytest.approx(until)
        assert await limiter.aobserve_headers("third", {"retry-after": "5"}) is not None
        assert await limiter.aobserve_headers("fourth", {}) is None

    _run(store, scenario)
    assert store.paused_until("third") is not None
    assert limiter.try_acquire("k", policy) is None  # the async grants count for the sync side


def test_permit_releases_its_lease_async(store):
    from airflow_agent_provider.limits import RateLimitPolicy

    limiter = RateLimiter(store)
    policy = RateLimitPolicy(max_concurrent=1)

    async def scenario():
        async with await limiter.aacquire("c", policy) as permit:
            assert await limiter.atry_acquire("c", policy) is None
        await permit.arelease()  # twice is fine
        second = await limiter.atry_acquire("c", policy)
        assert second is not None
        await second.arelease()

    _run(store, scenario)


def test_budget_twins(store):
    guard = BudgetGuard(store)
    call = CallScope("d", "r1", "M", "a", "gpt-5-mini", "openai")
    limits = BudgetLimits(run_cost_budget=1.0)

    async def scenario():
        held = await guard.areserve(call, 0.6, limits, reservation_id="s1")
        with pytest.raises(BudgetExceeded, match="run:d:r1"):
            await guard.areserve(call, 0.5, limits, reservation_id="s2")
        assert await held.asettle(CallCost(0.25, "override"), Usage(100, 10)) is True
        assert held.settled
        other = await guard.areserve(call, 0.5, limits, reservation_id="s2")
        assert await other.arelease() is True
        assert other.released
        again = await guard.areserve(call, 0.6, limits, reservation_id="s1")
        assert again.result.duplicate
        assert await again.asettle(CallCost(0.25, "override"), Usage(100, 10)) is False  # charged once

    _run(store, scenario)
    assert store.budget_spent(call.run_key) == pytest.approx(0.25)
    assert [e.entry_id for e in store.ledger_entries("d", "r1")] == ["s1"]


def test_breaker_twins(store):
    breaker = CircuitBreaker(store, "openai/m", BreakerConfig(failure_threshold=1, reset_timeout_s=60))

    async def failing():
        raise ConnectionError("down")

    async def scenario():
        assert (await breaker.aallow()).allowed
        with pytest.raises(ConnectionError):
            await breaker.acall(failing)
        assert await breaker.astate() == "open"
        with pytest.raises(CircuitOpenError):
            await breaker.acall(failing)
        await breaker.areset()
        assert await breaker.arecord_error(ValueError("a bug")) is None  # not a provider failure
        assert await breaker.astate() == "closed"
        assert await breaker.arecord_failure() == "open"

    _run(store, scenario)
    assert breaker.state == "open"
