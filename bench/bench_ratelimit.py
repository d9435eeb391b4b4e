"""Benchmark: one multi-tier acquire on our stores against the ``limits`` library's moving window.

Run: ``python bench/bench_ratelimit.py [--seconds 2] [--rounds 5] [--procs 4] [--tokens 10]``

Starts its own ``redis-server`` on a free loopback port (never the machine's own server), then
measures, side by side on that one server:

* ours: ``RedisStore.acquire`` with rpm + rph + rpd + tpm tiers and a concurrency slot, one call;
* ``limits``: ``MovingWindowRateLimiter`` over ``RedisStorage``, the same four tiers as four ``hit``
  calls (what a user of ``limits`` needs; it has no concurrency slots and no all-or-nothing, so
  this is the cheapest it can be made to do the same job);
* the SQLite store, same acquire;
* a correctness run with a low limit (8 processes, exact sliding-window check on the grant times).

Why it is shaped like this: the machine is small and shared, so single figures are noise. Each
figure is measured in ``--rounds`` rounds, ours and ``limits`` alternating inside every round, and
the median is printed. Every process warms up (connection, script load) before a common start
time, and the server is flushed before each figure so that neither side inherits the other's data.
The server's own cost is read from ``INFO commandstats`` (``usec_per_call`` of ``EVALSHA``, the
time spent inside the scripts) and ``INFO cpu`` (all of the server's CPU, network I/O included),
per acquire: with 2 cores the server is what saturates with 4 client processes.

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
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from airflow_agent_provider.deploy._local_config import redis_argv
from airflow_agent_provider.limits import RateLimiter, RateLimitPolicy
from airflow_agent_provider.stores import Tier, store_from_url

HIGH = RateLimitPolicy(
    requests_per_minute=10**9,
    requests_per_hour=10**9,
    requests_per_day=10**9,
    tokens_per_minute=10**12,
    max_concurrent=10**9,
)
WARMUP_S = 0.5
BATCH = 50

# A loop under test: (url, key, tokens, start_at, stop_at) -> acquires completed in [start_at, stop_at).
Loop = Callable[[str, str, int, float, float], int]


def start_redis(workdir: str) -> tuple[subprocess.Popen, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        redis_argv("redis-server", None, port, workdir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def _timed(step: Callable[[], None], start_at: float, stop_at: float) -> int:
    """Run ``step`` (warm-up included) until ``stop_at``; count only the calls from ``start_at`` on."""
    n = 0
    while True:
        now = time.time()
        if now >= stop_at:
            return n
        for _ in range(BATCH):
            step()
        if now >= start_at:
            n += BATCH


def ours(url: str, key: str, tokens: int, start_at: float, stop_at: float) -> int:
    store = store_from_url(url)
    tiers = HIGH.tiers()

    def step() -> None:
        grant = store.acquire(key, tiers, tokens, max_concurrent=HIGH.max_concurrent, lease_ttl_s=60)
        assert grant.granted

    try:
        return _timed(step, start_at, stop_at)
    finally:
        store.close()


def limits_lib(url: str, key: str, tokens: int, start_at: float, stop_at: float) -> int:
    from limits import RateLimitItemPerDay, RateLimitItemPerHour, RateLimitItemPerMinute
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter

    limiter = MovingWindowRateLimiter(RedisStorage(url))
    rpm, rph, rpd = RateLimitItemPerMinute(10**9), RateLimitItemPerHour(10**9), RateLimitItemPerDay(10**9)
    tpm = RateLimitItemPerMinute(10**9, namespace="TOKENS")

    def step() -> None:
        ok = (
            limiter.hit(rpm, key)
            and limiter.hit(rph, key)
            and limiter.hit(rpd, key)
            and limiter.hit(tpm, key, cost=tokens)
        )
        assert ok

    return _timed(step, start_at, stop_at)


def _worker(args) -> int:
    loop, url, key, tokens, start_at, stop_at = args
    return loop(url, key, tokens, start_at, stop_at)


@dataclass
class Figure:
    per_s: float
    evalsha_us: float | None = None  # server time inside scripts, per acquire
    cpu_us: float | None = None  # all server CPU, per acquire
    cpu_busy: float | None = None  # server CPU seconds per wall second


def _server_stats(client: redis.Redis | None) -> tuple[float, float]:
    """(microseconds spent in EVALSHA, server CPU seconds) so far."""
    if client is None:
        return 0.0, 0.0
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    cpu = client.info("cpu")
    return float(stats.get("usec", 0)), cpu["used_cpu_sys"] + cpu["used_cpu_user"]


def measure(
    loop: Loop, url: str, seconds: float, tokens: int, procs: int, client: redis.Redis | None
) -> Figure:
    """Acquires per second of ``procs`` processes running ``loop`` together on one fresh key."""
    if client is not None:
        client.flushall()
        client.config_resetstat()
    key = f"bench-{uuid.uuid4().hex[:8]}"
    start_at = time.time() + WARMUP_S + 0.2 * procs  # after every process has forked and warmed up
    stop_at = start_at + seconds
    jobs = [(loop, url, key, tokens, start_at, stop_at)] * procs
    # The server figures cover the measured span only: read them at the common start and stop.
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        pending = pool.map_async(_worker, jobs)
        time.sleep(max(start_at - time.time(), 0))
        usec0, cpu0 = _server_stats(client)
        time.sleep(max(stop_at - time.time(), 0))
        usec1, cpu1 = _server_stats(client)
        total = sum(pending.get())
    fig = Figure(total / seconds)
    if client is not None and total:
        fig.evalsha_us = (usec1 - usec0) / total
        fig.cpu_us = (cpu1 - cpu0) * 1e6 / total
        fig.cpu_busy = (cpu1 - cpu0) / seconds
    return fig


def _median(figs: list[Figure], attr: str) -> float:
    return statistics.median(getattr(f, attr) for f in figs)


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
        times = sorted(
            t for ts in pool.map(_correct_worker, [(url, key, limit, window, seconds)] * procs) for t in ts
        )
    over = sum(
        1 for i, t in enumerate(times) if i + 1 - bisect.bisect_right(times, t - window + 1e-7) > limit
    )
    return len(times), over


def compare(impls: dict[str, Loop], url: str, client: redis.Redis, args: argparse.Namespace) -> None:
    """Median figures of every implementation, 1 and ``--procs`` processes, alternating per round."""
    for procs in sorted({1, args.procs}):
        figs: dict[str, list[Figure]] = {name: [] for name in impls}
        for r in range(args.rounds):
            names = list(impls) if r % 2 == 0 else list(reversed(impls))
            for name in names:
                figs[name].append(measure(impls[name], url, args.seconds, args.tokens, procs, client))
        base = statistics.median(f.per_s for f in figs["limits"])
        for name, fl in figs.items():
            runs = " ".join(f"{f.per_s:.0f}" for f in fl)
            print(
                f"  {procs} proc(s) {name:>14}: median {_median(fl, 'per_s'):7.0f} acquires/s "
                f"({_median(fl, 'per_s') / base:4.2f}x limits)  server/acquire: evalsha "
                f"{_median(fl, 'evalsha_us'):5.1f} us, cpu {_median(fl, 'cpu_us'):5.1f} us, "
                f"server busy {_median(fl, 'cpu_busy'):4.2f} cores   [rounds: {runs}]"
            )


def main(extra: dict[str, Loop] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per figure and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=10, help="tokens reserved per acquire (limits: cost)")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="aap-bench-")
    proc, port = start_redis(workdir)
    redis_url = f"redis://127.0.0.1:{port}/0"
    sqlite_url = f"sqlite:///{workdir}/bench.db"
    client = redis.Redis.from_url(redis_url)
    try:
        print(
            f"multi-tier acquire (rpm+rph+rpd+tpm+concurrency), tokens={args.tokens}, {args.seconds:g}s x "
            f"{args.rounds} rounds per figure, redis-server on :{port}; limits = 4 hits = 4 EVALSHA"
        )
        compare({"ours(redis)": ours, **(extra or {}), "limits": limits_lib}, redis_url, client, args)
        if not args.skip_sqlite:
            for procs in sorted({1, args.procs}):
                runs = [
                    measure(ours, sqlite_url, args.seconds, args.tokens, procs, None).per_s
                    for _ in range(max(args.rounds // 2, 1))
                ]
                print(f"  {procs} proc(s)   ours(sqlite): median {statistics.median(runs):7.0f} acquires/s")
        for name, url in (("redis", redis_url), ("sqlite", sqlite_url)):
            total, over = over_limit_windows(url)
            print(
                f"  correctness ({name}): 8 procs, 50 req / 1 s window, 3 s: {total} grants, "
                f"{over} over-limit windows"
            )
    finally:
        client.close()
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
