"""RateLimiter and Permit on both stores, on the real clock (short windows keep it fast)."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_agent_provider.limits import (
    RateLimiter,
    RateLimitImpossible,
    RateLimitPolicy,
    RateLimitTimeout,
    limit_key,
)
from tests.limits._short import short_policy as _ShortPolicy


def test_acquire_sleeps_the_reported_wait(store):
    limiter = RateLimiter(store)
    policy = _ShortPolicy(2, 0.4)
    first = limiter.acquire("k", policy)
    limiter.acquire("k", policy)
    third = limiter.acquire("k", policy, timeout=2)
    # The third waits until the first leaves the 0.4 s window, not longer.
    assert third.granted_at - first.granted_at >= 0.4
    assert 0.3 <= third.wait_s <= 0.7
    assert first.wait_s < 0.1


def test_timeout_raises_without_waiting_in_vain(store):
    limiter = RateLimiter(store)
    policy = _ShortPolicy(1, 30.0)
    limiter.acquire("k", policy)
    start = time.monotonic()
    with pytest.raises(RateLimitTimeout, match="limited by short") as info:
        limiter.acquire("k", policy, timeout=0.5)
    assert time.monotonic() - start < 0.3  # 30 s away: no point sleeping 0.5 s first
    assert info.value.wait_s == pytest.approx(30, abs=1)
    assert limiter.try_acquire("k", policy) is None


def test_impossible_request_is_an_error(store):
    limiter = RateLimiter(store)
    with pytest.raises(RateLimitImpossible, match="tokens_per_minute"):
        limiter.acquire("k", RateLimitPolicy(tokens_per_minute=100), tokens=101)


def test_permit_releases_on_exit_and_settles(store):
    limiter = RateLimiter(store, concurrency_poll_s=0.05)
    policy = RateLimitPolicy(tokens_per_minute=1000, max_concurrent=1)
    with limiter.acquire("k", policy, tokens=900) as permit:
        assert permit.settle(300) == -600
        with pytest.raises(RateLimitTimeout, match="concurrency"):
            limiter.acquire("k", policy, tokens=10, timeout=0.15)
    # Released on exit; the refund left room for 700 more tokens.
    second = limiter.acquire("k", policy, tokens=700, timeout=1)
    second.release()
    second.release()


def test_concurrency_wait_is_polled_not_slept_to_expiry(store):
    limiter = RateLimiter(store, concurrency_poll_s=0.05)
    policy = RateLimitPolicy(max_concurrent=1, lease_ttl_s=600)
    permit = limiter.acquire("k", policy)

    async def main():
        async def holder():
            await asyncio.sleep(0.2)
            permit.release()

        task = asyncio.create_task(holder())
        got = await limiter.aacquire("k", policy, timeout=5)
        await task
        return got

    second = asyncio.run(main())
    assert 0.15 <= second.wait_s < 1.0
    second.release()


def test_aacquire_waits_with_asyncio(store):
    limiter = RateLimiter(store)
    policy = _ShortPolicy(1, 0.3)

    async def main():
        first = await limiter.aacquire("k", policy)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        second = await limiter.aacquire("k", policy, timeout=2)
        tick_task.cancel()
        return first, second, ticks

    first, second, ticks = asyncio.run(main())
    assert second.granted_at - first.granted_at >= 0.3
    assert ticks >= 5  # the event loop kept running while waiting
    with pytest.raises(RateLimitTimeout):
        asyncio.run(_twice(limiter))


async def _twice(limiter):
    await limiter.aacquire("k3", _ShortPolicy(1, 10))
    await limiter.aacquire("k3", _ShortPolicy(1, 10), timeout=0.1)


@pytest.mark.parametrize(
    ("headers", "delay"),
    [
        ({"retry-after": "1"}, 1.0),
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "500ms"}, 0.5),
    ],
    ids=["retry-after", "openai-remaining-0"],
)
def test_observed_headers_pause_every_acquirer(store, headers, delay):
    limiter = RateLimiter(store)
    other_worker = RateLimiter(store)  # another process would share the store the same way
    policy = RateLimitPolicy(requests_per_minute=1000)
    assert limiter.observe_headers("k", {"x-ratelimit-remaining-requests": "12"}) is None
    start = time.monotonic()
    until = limiter.observe_headers("k", headers)
    assert until == pytest.approx(store.store_time() + delay, abs=0.2)
    permit = other_worker.acquire("k", policy, timeout=3)
    waited = time.monotonic() - start
    assert delay - 0.1 <= waited <= delay + 0.5
    assert permit.granted_at >= until
    assert other_worker.acquire("unrelated", policy).wait_s < 0.1


def test_limit_key():
    assert limit_key("OpenAI", "gpt-5-mini") == "openai/gpt-5-mini"
    assert limit_key("anthropic") == "anthropic"
    assert limit_key("openai", "gpt-5-mini", group="batch") == "openai/gpt-5-mini#batch"
    with pytest.raises(ValueError, match="needs a provider"):
        limit_key(" ")
