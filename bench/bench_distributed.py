"""Benchmark: 60 agents through a 4-slot pool on the native multi-process stack (2 Celery workers).

Run: ``python bench/bench_distributed.py [--latency 1.0] [--workers 2] [--concurrency 2]``

Starts the stack of ``airflow_agent_provider.deploy.local`` in a temp dir (private Postgres and
Redis, the local LLM server with a fixed answer latency), triggers ``deploy_pool_60`` from
``tests/deploy/workflows`` through the REST API and reports:

* wall time of the run (trigger to final state) and from first to last task start;
* the bound: 60 calls / 4 slots x latency (15 s at 1 s), what a zero-overhead scheduler would take;
* overhead per task: (wall - bound) / 60, i.e. what scheduling, queueing through Celery, starting the
  task process and parsing the DAG cost on top of the model's latency, per agent;
* the server's ``max_in_flight`` (must be <= 4) and the mean task duration as Airflow saw it.

Figures are printed, never asserted. The stack is always stopped, also on errors.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _stack_env import refuse_foreign_plugins

from tests.deploy.conftest import POOL_SLOTS, start_stack

DAG_ID = "deploy_pool_60"
AGENTS = 60


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--latency", type=float, default=1.0, help="LLM server latency in seconds (default 1)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per worker (default 2)")
    parser.add_argument(
        "--allow-plugins",
        action="store_true",
        help="run even with other Airflow plugins installed (every task process loads them)",
    )
    args = parser.parse_args()
    refused = refuse_foreign_plugins(args.allow_plugins)
    if refused:
        parser.error(refused)

    t0 = time.monotonic()
    stack, base = start_stack(workers=args.workers, concurrency=args.concurrency, llm_latency=args.latency)
    try:
        t_up = time.monotonic() - t0
        stack.wait_for_dag(DAG_ID)
        stack.llm.reset()
        t_trigger = time.time()
        run_id = stack.trigger(DAG_ID)
        state = stack.wait(DAG_ID, run_id, timeout=1800)
        wall = time.time() - t_trigger
        stats = stack.llm.stats()
        tis = [ti for ti in stack.task_instances(DAG_ID, run_id) if ti["pool"] == "llm_pool"]
    finally:
        t_down0 = time.monotonic()
        stack.down()
        t_down = time.monotonic() - t_down0
        shutil.rmtree(base, ignore_errors=True)

    bound = AGENTS / POOL_SLOTS * args.latency
    starts = sorted(s for s in (_ts(ti["start_date"]) for ti in tis) if s)
    durations = [ti["duration"] for ti in tis if ti.get("duration") is not None]
    calls = [e for e in stats["log"] if e["path"].endswith("/chat/completions")]
    per_worker: dict[str, int] = {}
    for ti in tis:
        name = (ti["hostname"] or "?").split(".", 1)[0]
        per_worker[name] = per_worker.get(name, 0) + 1
    print(
        f"stack: {args.workers} workers x {args.concurrency} slots, pool llm_pool = {POOL_SLOTS} slots, "
        f"LLM latency {args.latency:.2f} s"
    )
    print(f"up: {t_up:.1f} s   down: {t_down:.1f} s")
    print(f"run {DAG_ID}: {state}, {len(tis)} agent tasks, {len(calls)} model calls, per worker {per_worker}")
    print(f"wall (trigger -> final state): {wall:.1f} s")
    if len(starts) > 1:
        print(f"first -> last task start:      {starts[-1] - starts[0]:.1f} s")
    print(f"bound ({AGENTS} calls / {POOL_SLOTS} slots x {args.latency:.2f} s): {bound:.1f} s")
    print(f"wall / bound: {wall / bound:.2f}x")
    print(f"overhead per task ((wall - bound) / {AGENTS}): {(wall - bound) / AGENTS:.2f} s")
    if durations:
        print(
            f"task duration as Airflow measured it: mean {statistics.mean(durations):.2f} s, "
            f"median {statistics.median(durations):.2f} s (model latency {args.latency:.2f} s)"
        )
    print(f"server max_in_flight: {stats['max_in_flight']} (pool slots {POOL_SLOTS})")
    return 0 if state == "success" else 1


if __name__ == "__main__":
    raise SystemExit(main())
