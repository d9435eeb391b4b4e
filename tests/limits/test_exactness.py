"""Exactness across processes: 8 real processes on one key, on both stores.

Every grant time comes from the store's own clock, so the check below is the store's own notion of
"window": no interval ``(t - W, t]`` may hold more than the limit, whichever process took the grants.
"""

from __future__ import annotations

import bisect
import multiprocessing
import os
import queue
import random
import signal
import time
import traceback

import pytest

from airflow_agent_provider.limits import RateLimiter, RateLimitPolicy
from airflow_agent_provider.stores import store_from_url
from tests.limits._short import short_policy

pytestmark = pytest.mark.slow

PROCS = 8
RUN_S = 3.0
WINDOW_S = 1.0
EPS = 1e-7  # below the stores' microsecond resolution; absorbs float rounding at the boundary
# Spawned, not forked: the test process may hold threads of earlier tests (a local server, an
# executor) whose locks a forked child would inherit held. The children start only once every one
# of them has imported and opened its store, so the hammering begins at the same moment for all.
_ctx = multiprocessing.get_context("spawn")
READY_TIMEOUT_S = 120.0


def _hammer(url, key, policy, tokens, go, start_at, results, seed):
    """Acquire until the run ends; report (store time, actual tokens) of every grant."""
    try:
        rng = random.Random(seed)
        store = store_from_url(url)
        limiter = RateLimiter(store)
        grants = []
        results.put(("ready", None))
        if not go.wait(READY_TIMEOUT_S):
            raise TimeoutError("never told to start")
        time.sleep(max(start_at.value - time.time(), 0))
        while time.time() < start_at.value + RUN_S:
            permit = limiter.acquire(key, policy, tokens)
            actual = tokens
            if tokens:
                time.sleep(rng.uniform(0, 0.01))  # the "call"
                actual = rng.randint(tokens // 5, tokens)
                permit.settle(actual)
            grants.append((permit.granted_at, actual))
        store.close()
        results.put(("grants", grants))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def _next(results, procs, timeout_s):
    """The next message of a child; a clear failure if a child died or went silent instead."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            kind, payload = results.get(timeout=1.0)
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                pytest.fail(f"a child process died with exit code {dead[0]} before reporting")
            if time.monotonic() > deadline:
                pytest.fail(f"no child reported within {timeout_s:.0f} s")
            continue
        if kind == "error":
            pytest.fail(f"a child process failed:\n{payload}")
        return kind, payload


def _run(url, key, policy, tokens=0):
    results = _ctx.Queue()
    go = _ctx.Event()
    start_at = _ctx.Value("d", 0.0)
    procs = [
        _ctx.Process(target=_hammer, args=(url, key, policy, tokens, go, start_at, results, seed))
        for seed in range(PROCS)
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            assert _next(results, procs, READY_TIMEOUT_S)[0] == "ready"
        start_at.value = time.time() + 0.2
        go.set()
        grants = [g for _ in procs for g in _next(results, procs, RUN_S + 60)[1]]
    finally:
        go.set()
        for proc in procs:
            proc.join(timeout=30)
            if proc.exitcode is None:
                proc.kill()
    assert [proc.exitcode for proc in procs] == [0] * PROCS
    return sorted(grants)


def _max_in_window(grants, window_s, weight):
    times = [t for t, _ in grants]
    prefix = [0]
    for _, actual in grants:
        prefix.append(prefix[-1] + weight(actual))
    worst = 0
    for i, t in enumerate(times):
        lo = bisect.bisect_right(times, t - window_s + EPS)
        worst = max(worst, prefix[i + 1] - prefix[lo])
    return worst


def test_requests_window_is_exact_across_processes(store_url):
    limit = 20
    grants = _run(store_url, "exact-req", short_policy(limit, WINDOW_S))
    # Saturated (the limit was reached) and never exceeded, in any window.
    assert _max_in_window(grants, WINDOW_S, lambda _: 1) == limit
    assert len(grants) >= 2 * limit
    assert len(grants) <= limit * (RUN_S / WINDOW_S + 1)


def test_tokens_window_with_settlement_is_exact(store_url):
    limit, reserve = 1000, 100
    grants = _run(store_url, "exact-tok", short_policy(limit, WINDOW_S, unit="tokens"), tokens=reserve)
    assert _max_in_window(grants, WINDOW_S, lambda actual: actual) <= limit
    # Refunds were put back to use: some window held more grants than reservations alone allow.
    assert _max_in_window(grants, WINDOW_S, lambda _: 1) > limit // reserve


def _hold_lease(url, key, policy, results):
    store = store_from_url(url)
    permit = RateLimiter(store).acquire(key, policy)
    results.put(permit.granted_at)
    time.sleep(60)  # killed long before


def test_killed_holder_slot_returns_after_ttl(store_url):
    ttl = 1.0
    policy = RateLimitPolicy(max_concurrent=1, lease_ttl_s=ttl)
    results = _ctx.Queue()
    holder = _ctx.Process(target=_hold_lease, args=(store_url, "lease", policy, results))
    holder.start()
    granted_at = results.get(timeout=READY_TIMEOUT_S)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(timeout=10)
    assert holder.exitcode == -signal.SIGKILL

    store = store_from_url(store_url)
    try:
        refused = store.acquire("lease", [], max_concurrent=1, lease_ttl_s=ttl)
        assert not refused.granted
        assert refused.reason == "concurrency"
        assert refused.wait_s == pytest.approx(granted_at + ttl - refused.at, abs=1e-3)
        permit = RateLimiter(store, concurrency_poll_s=0.02).acquire("lease", policy, timeout=5)
        assert permit.granted_at >= granted_at + ttl  # not before the TTL...
        assert permit.granted_at <= granted_at + ttl + 0.5  # ...and soon after it
        permit.release()
    finally:
        store.close()
