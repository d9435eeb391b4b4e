"""Benchmark: one multi-tier acquire on our stores against the ``limits`` library's moving window.

Run: ``python bench/bench_ratelimit.py [--seconds 3] [--procs 4] [--tokens 10]``

Starts its own ``redis-server`` on a free loopback port (never the machine's own server), then
measures, side by side on that one server:

* ours: ``RedisStore.acquire`` with rpm + rph + rpd + tpm tiers and a concurrency slot, one call;
* ``limits``: ``MovingWindowRateLimiter`` over ``RedisStorage``, the same four tiers as four ``hit``
  calls (what a user of ``limits`` needs; it has no concurrency slots and no all-or-nothing, so
  this is the cheapest it can be made to do the same job);
* the SQLite store, same acquire;
* a correctness run with a low limit (8 processes, exact sliding-window check on the grant times).

All limits are high enough that every call grants, except in the correctness run. Figures are
printed, never asserted: speed is checked by reading them.
"""

from __future__ import annotations

import argparse
import bisect
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from airflow_agent_provider.limits import RateLimiter, RateLimitPolicy  # noqa: E402
from airflow_agent_provider.stores import Tier, store_from_url  # noqa: E402

HIGH = RateLimitPolicy(
    requests_per_minute=10**9, requests_per_hour=10**9, requests_per_day=10**9,
    tokens_per_minute=10**12, max_concurrent=10**9,
)


def start_redis(workdir: str) -> tuple[subprocess.Popen, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def _ours(url: str, seconds: float, tokens: int, key: str) -> int:
    store = store_from_url(url)
    tiers, n = HIGH.tiers(), 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            grant = store.acquire(key, tiers, tokens, max_concurrent=HIGH.max_concurrent, lease_ttl_s=60)
            assert grant.granted
        n += 50
    store.close()
    return n


def _limits(url: str, seconds: float, tokens: int, key: str) -> int:
    from limits import RateLimitItemPerDay, RateLimitItemPerHour, RateLimitItemPerMinute
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter

    limiter = MovingWindowRateLimiter(RedisStorage(url))
    rpm, rph, rpd = RateLimitItemPerMinute(10**9), RateLimitItemPerHour(10**9), RateLimitItemPerDay(10**9)
    tpm = RateLimitItemPerMinute(10**9, namespace="TOKENS")
    n = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            ok = (limiter.hit(rpm, key) and limiter.hit(rph, key) and limiter.hit(rpd, key)
                  and limiter.hit(tpm, key, cost=tokens))
            assert ok
        n += 50
    return n


def _worker(args):
    fn, url, seconds, tokens, key = args
    return fn(url, seconds, tokens, key)


def rate(fn, url: str, seconds: float, tokens: int, procs: int) -> float:
    key = f"bench-{uuid.uuid4().hex[:8]}"
    if procs == 1:
        return fn(url, seconds, tokens, key) / seconds
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        counts = pool.map(_worker, [(fn, url, seconds, tokens, key)] * procs)
    return sum(counts) / seconds


def _correct_worker(args):
    url, key, limit, window, seconds = args
    limiter = RateLimiter(store_from_url(url))
    policy = _Short(limit, window)
    out, end = [], time.time() + seconds
    while time.time() < end:
        out.append(limiter.acquire(key, policy).granted_at)
    return out


class _Short(RateLimitPolicy):
    def __init__(self, limit: int, window: float) -> None:
        super().__init__()
        object.__setattr__(self, "_tier", Tier("short", limit, window))

    def tiers(self):
        return [self._tier]


def over_limit_windows(url: str, limit: int = 50, window: float = 1.0, seconds: float = 3.0, procs: int = 8):
    key = f"correct-{uuid.uuid4().hex[:8]}"
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        times = sorted(t for ts in pool.map(_correct_worker, [(url, key, limit, window, seconds)] * procs)
                       for t in ts)
    over = sum(1 for i, t in enumerate(times) if i + 1 - bisect.bisect_right(times, t - window + 1e-7) > limit)
    return len(times), over


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=10, help="tokens reserved per acquire (limits: cost)")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="aap-bench-")
    proc, port = start_redis(workdir)
    redis_url = f"redis://127.0.0.1:{port}/0"
    sqlite_url = f"sqlite:///{workdir}/bench.db"
    try:
        print(f"multi-tier acquire (rpm+rph+rpd+tpm+concurrency), tokens={args.tokens}, "
              f"{args.seconds:.0f}s per figure, redis-server on :{port}")
        for procs in (1, args.procs):
            ours = rate(_ours, redis_url, args.seconds, args.tokens, procs)
            theirs = rate(_limits, redis_url, args.seconds, args.tokens, procs)
            print(f"  {procs} proc(s): ours(redis) {ours:9.0f}/s   limits moving-window {theirs:9.0f}/s   "
                  f"ratio {ours / theirs:5.2f}x")
        for procs in (1, args.procs):
            print(f"  {procs} proc(s): ours(sqlite) {rate(_ours, sqlite_url, args.seconds, args.tokens, procs):8.0f}/s")
        for name, url in (("redis", redis_url), ("sqlite", sqlite_url)):
            total, over = over_limit_windows(url)
            print(f"  correctness ({name}): 8 procs, 50 req / 1 s window, 3 s: {total} grants, "
                  f"{over} over-limit windows")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
