"""The rate-limit contract every store must keep; runs on SQLite and Redis (``store`` fixture).

Times are passed explicitly (``now=``) so that windows are checked to the microsecond without
sleeping; the real clock is exercised by tests/limits.
"""

from __future__ import annotations

import math

import pytest

from airflow_agent_provider.stores import Tier

T = 1_800_000_000.0  # a fixed store-clock moment
RPW = Tier("rpw", 3, 10.0)  # 3 requests per 10 s
TPW = Tier("tpw", 100, 10.0, "tokens")  # 100 tokens per 10 s


def test_requests_tier_alone(store):
    for i in range(3):
        assert store.acquire("k", [RPW], now=T + i).granted
    refused = store.acquire("k", [RPW], now=T + 3)
    assert not refused.granted
    assert refused.grant_id is None
    assert refused.reason == "rpw"
    assert refused.wait_s == pytest.approx(7.0)  # the first grant leaves the window at T + 10
    assert not store.acquire("k", [RPW], now=T + 9.999).granted
    assert store.acquire("k", [RPW], now=T + 10).granted  # exclusive boundary: T is out at T + 10
    assert not store.acquire("k", [RPW], now=T + 10.5).granted


def test_tokens_tier_alone(store):
    assert store.acquire("k", [TPW], 60, now=T).granted
    assert store.acquire("k", [TPW], 30, now=T + 1).granted
    refused = store.acquire("k", [TPW], 20, now=T + 2)
    assert not refused.granted
    assert refused.reason == "tpw"
    assert refused.wait_s == pytest.approx(8.0)  # freeing the 60 at T + 10 is enough
    assert store.acquire("k", [TPW], 10, now=T + 2).granted  # exactly the limit
    assert not store.acquire("k", [TPW], 1, now=T + 3).granted
    # The wait covers as many entries as must leave: 60, 30 and 10 (at T+2) for 95 more tokens.
    big = store.acquire("k", [TPW], 95, now=T + 3)
    assert big.reason == "tpw"
    assert big.wait_s == pytest.approx(9.0)
    never = store.acquire("k", [TPW], 101, now=T + 3)
    assert not never.granted
    assert math.isinf(never.wait_s)
    assert never.never


def test_combined_tiers_are_all_or_nothing(store):
    fast = Tier("per_second", 2, 1.0)
    tiers = [fast, RPW, TPW]
    assert store.acquire("k", tiers, 40, now=T).granted
    assert store.acquire("k", tiers, 40, now=T + 0.1).granted
    # Three tiers refuse now: per_second (until T+1), tokens (until T+10); the longest wait is reported.
    refused = store.acquire("k", tiers, 40, now=T + 0.2)
    assert not refused.granted
    assert refused.reason == "tpw"
    assert refused.wait_s == pytest.approx(9.8)
    # Refused calls took nothing: a small request still fits every tier.
    assert store.acquire("k", tiers, 20, now=T + 1.5).granted
    refused = store.acquire("k", tiers, 0, now=T + 1.6)
    assert refused.reason == "rpw"
    assert refused.wait_s == pytest.approx(8.4)
    # Only per_second refuses: its own wait.
    many = Tier("many", 100, 10.0)
    assert store.acquire("k2", [fast, many], now=T).granted
    assert store.acquire("k2", [fast, many], now=T + 0.5).granted
    refused = store.acquire("k2", [fast, many], now=T + 0.75)
    assert refused.reason == "per_second"
    assert refused.wait_s == pytest.approx(0.25)


def test_keys_are_independent(store):
    for _ in range(3):
        assert store.acquire("a", [RPW], now=T).granted
    assert not store.acquire("a", [RPW], now=T).granted
    assert store.acquire("b", [RPW], now=T).granted


def test_settle_refunds_and_charges(store):
    first = store.acquire("k", [TPW], 80, now=T)
    assert not store.acquire("k", [TPW], 30, now=T + 1).granted
    assert store.settle("k", first.grant_id, 50) == -30  # refund
    second = store.acquire("k", [TPW], 30, now=T + 1)
    assert second.granted  # 50 + 30 <= 100
    assert store.settle("k", second.grant_id, 45) == 15  # extra charge: 50 + 45 = 95
    assert not store.acquire("k", [TPW], 10, now=T + 2).granted
    assert store.acquire("k", [TPW], 5, now=T + 2).granted
    assert store.settle("k", "no-such-grant", 10) == 0
    # A grant that has left the window changes nothing when settled late.
    assert store.acquire("k", [TPW], 0, now=T + 10.5).granted
    store.settle("k", first.grant_id, 0)
    assert not store.acquire("k", [TPW], 60, now=T + 10.5).granted  # 45 + 5 still inside


def test_concurrency_lease_release(store):
    a = store.acquire("k", [], max_concurrent=2, lease_ttl_s=60, now=T)
    b = store.acquire("k", [], max_concurrent=2, lease_ttl_s=60, now=T + 1)
    assert a.granted
    assert b.granted
    refused = store.acquire("k", [], max_concurrent=2, lease_ttl_s=60, now=T + 2)
    assert not refused.granted
    assert refused.reason == "concurrency"
    assert refused.wait_s == pytest.approx(58.0)  # a's lease expiry, unless released earlier
    assert store.release("k", a.grant_id) is True
    assert store.release("k", a.grant_id) is False  # idempotent
    assert store.acquire("k", [], max_concurrent=2, lease_ttl_s=60, now=T + 2).granted


def test_concurrency_lease_expires(store):
    assert store.acquire("k", [RPW], max_concurrent=1, lease_ttl_s=5, now=T).granted
    refused = store.acquire("k", [RPW], max_concurrent=1, lease_ttl_s=5, now=T + 4.9)
    assert refused.reason == "concurrency"
    assert refused.wait_s == pytest.approx(0.1)
    assert store.acquire("k", [RPW], max_concurrent=1, lease_ttl_s=5, now=T + 5).granted


def test_refused_concurrency_takes_no_tier(store):
    assert store.acquire("k", [RPW], max_concurrent=1, now=T).granted
    for i in range(5):
        assert not store.acquire("k", [RPW], max_concurrent=1, now=T + 1 + i * 0.01).granted
    assert store.acquire("k", [RPW], now=T + 2).granted
    assert store.acquire("k", [RPW], now=T + 2).granted  # 3 in total, refused ones did not count


def test_penalize(store):
    now = store.store_time()
    assert store.paused_until("k") is None
    until = store.penalize("k", delay_s=30)
    assert until == pytest.approx(now + 30, abs=1.0)
    assert store.paused_until("k") == pytest.approx(until)
    refused = store.acquire("k", [RPW])
    assert not refused.granted
    assert refused.reason == "paused"
    assert refused.wait_s == pytest.approx(30, abs=1.0)
    assert store.penalize("k", until=now + 5) == pytest.approx(until)  # a pause only extends
    assert store.penalize("k", until=now + 60) == pytest.approx(now + 60, abs=1e-5)
    assert store.acquire("other", [RPW]).granted
    with pytest.raises(ValueError, match="exactly one of until or delay_s"):
        store.penalize("k")


def test_store_time_is_epoch(store):
    import time

    assert store.store_time() == pytest.approx(time.time(), abs=2.0)
    grant = store.acquire("k", [RPW])
    assert grant.granted
    assert grant.at == pytest.approx(time.time(), abs=2.0)


def test_unreachable_redis_is_store_unavailable():
    from airflow_agent_provider.stores import StoreUnavailable, store_from_url
    from tests.fixtures.redis_server import free_port

    store = store_from_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    with pytest.raises(StoreUnavailable):
        store.ping()
    with pytest.raises(StoreUnavailable):
        store.acquire("k", [RPW])
    store.close()
