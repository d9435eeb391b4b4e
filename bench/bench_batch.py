"""Benchmark: the same workflows delivered real-time and as provider batches, side by side.

Run: ``python bench/bench_batch.py [--items 500] [--latency 0.2] [--batch-seconds 3] [--only erp,for_each]``

Two workflows, each run twice with ``dag.test()`` (Airflow's in-process runner) against the
project's local OpenAI/Anthropic-compatible server (:mod:`airflow_agent_provider.testing`):

* ``erp``: ``dags/workflows/erp_month_end.yaml`` with ``delivery`` forced to ``realtime`` on every
  agent, then to ``batch`` on every agent that can be batched (agents with tools stay real-time:
  a tool loop cannot be a batch request);
* ``for_each``: one tool-less agent with a static ``for_each`` of ``--items`` items (default 500).

The server answers a real-time call after ``--latency`` seconds and a batch ``--batch-seconds``
after it was created (``BatchConfig.processing_seconds``). Per mode it prints:

* cost from the ledger (``Ledger.run_summary``: total, and realtime / batch spend), and the ratio
  batch / realtime (the providers' batch price is half);
* provider API calls: every request the server counted (``/_admin`` excluded), and how many of them
  were batch API calls (files, batches, message batches) and batches created;
* worker-slot seconds: summed over every task instance of the agents and submit tasks, the time
  its task code ran on a worker (``execute`` / the resume method), and the time it spent deferred
  (from the ``TaskDeferred`` to its resume), measured around the Task SDK's ``_execute_task``.

``dag.test()`` runs one task at a time and runs each trigger inline, so wall times are sequential,
not what a fleet of workers would see; the worker/deferred split is what matters. Figures are
printed, never asserted. Everything (AIRFLOW_HOME, metadata DB, store, DAGs folder) lives in a
temporary directory.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODES = ("realtime", "batch")
BATCH_PATHS = ("/v1/files", "/v1/batches", "/v1/messages/batches")


def _environment(home: Path) -> None:
    """A private Airflow and store; must run before Airflow is imported."""
    (home / "dags").mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__AGENT_PROVIDER__STORE_URL": f"sqlite:///{home / 'store.db'}",
            # The local server answers in seconds; real providers are polled every 30 s, backing off.
            "AIRFLOW__AGENT_PROVIDER__BATCH_POLL_INTERVAL": "0.2",
            "AIRFLOW__AGENT_PROVIDER__BATCH_MAX_POLL_INTERVAL": "0.5",
        }
    )


# ---------------------------------------------------------------------------------------- workflows


def erp_workflow(mode: str) -> dict[str, Any]:
    """The ERP example with every agent ``realtime``, or every batchable agent ``batch``."""
    import yaml

    data: dict[str, Any] = yaml.safe_load((REPO / "dags" / "workflows" / "erp_month_end.yaml").read_text())
    data["name"] = f"bench_batch_erp_{mode}"
    data["schedule"] = None
    data.pop("budget_gate", None)  # the bench's runs share one month: no gate between them
    data.pop("produces", None)
    data["defaults"]["retries"] = {"attempts": 0}
    for module in data["modules"].values():
        for agent in module["agents"]:
            agent["delivery"] = "batch" if mode == "batch" and not agent.get("tools") else "realtime"
    return data


def for_each_workflow(mode: str, items: int) -> dict[str, Any]:
    """One tool-less agent over ``items`` invoices."""
    return {
        "name": f"bench_batch_for_each_{mode}",
        "schedule": None,
        "cost_budget": 50.0,
        "defaults": {
            "provider": "openai",
            "model": "gpt-5-mini",
            "max_tokens": 256,
            "retries": {"attempts": 0},
        },
        "modules": {
            "Invoices": {
                "agents": [
                    {
                        "name": "classify",
                        "delivery": mode,
                        "for_each": [f"INV-{i:05d}" for i in range(items)],
                        "prompt": "Classify supplier invoice {{ item }} into an expense account; one line.",
                    }
                ]
            }
        },
    }


# ---------------------------------------------------------------------------------------- timing


@dataclass
class SlotTimes:
    """Worker and deferred seconds per task instance, from around the Task SDK's ``_execute_task``."""

    worker_s: dict[tuple[str, int], float] = field(default_factory=dict)
    deferred_s: dict[tuple[str, int], float] = field(default_factory=dict)
    deferred_at: dict[tuple[str, int], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.worker_s.clear()
            self.deferred_s.clear()
            self.deferred_at.clear()

    def totals(self, task_filter: Any) -> tuple[float, float, int]:
        keys = [key for key in self.worker_s if task_filter(key[0])]
        return (
            sum(self.worker_s[k] for k in keys),
            sum(self.deferred_s.get(k, 0.0) for k in keys),
            len(keys),
        )


def install_timer(times: SlotTimes) -> None:
    """Wrap ``task_runner._execute_task``: the time each task's code ran, and its deferred gaps."""
    from airflow.sdk.exceptions import TaskDeferred
    from airflow.sdk.execution_time import task_runner

    original = task_runner._execute_task

    def timed(context: Any, ti: Any, log: Any) -> Any:
        key = (ti.task_id, ti.map_index if ti.map_index is not None else -1)
        started = time.monotonic()
        with times.lock:
            if key in times.deferred_at:
                times.deferred_s[key] = times.deferred_s.get(key, 0.0) + started - times.deferred_at.pop(key)
        try:
            return original(context, ti, log)
        except TaskDeferred:
            with times.lock:
                times.deferred_at[key] = time.monotonic()
            raise
        finally:
            with times.lock:
                times.worker_s[key] = times.worker_s.get(key, 0.0) + time.monotonic() - started

    task_runner._execute_task = timed


# ---------------------------------------------------------------------------------------- runs


@dataclass
class Figures:
    workflow: str
    mode: str
    state: str = "not run"
    wall_s: float = 0.0
    agents: int = 0
    usd: float = 0.0
    realtime_usd: float = 0.0
    batch_usd: float = 0.0
    realtime_calls: int = 0
    batch_calls: int = 0
    api_calls: int = 0
    batch_api_calls: int = 0
    batches_created: int = 0
    worker_s: float = 0.0
    deferred_s: float = 0.0
    task_instances: int = 0
    error: str = ""


def _sync_to_db(dag: Any) -> None:
    """``dag.test()`` runs only a DAG the metadata DB knows (as tests/fixtures/airflow_env.py does)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"], collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def _api_calls(stats: dict[str, Any]) -> tuple[int, int]:
    by_path: dict[str, int] = stats.get("by_path", {})
    calls = {p: n for p, n in by_path.items() if not p.startswith("/_admin") and p != "/v1/models"}
    batch = sum(n for p, n in calls.items() if p.startswith(BATCH_PATHS))
    return sum(calls.values()), batch


def run_one(
    server: Any,
    times: SlotTimes,
    name: str,
    mode: str,
    data: dict[str, Any],
    work: Path,
    batch_seconds: float,
) -> Figures:
    import yaml

    from airflow_agent_provider.cost.ledger import Ledger
    from airflow_agent_provider.definitions.loader import parse_workflow
    from airflow_agent_provider.factory import build_dag
    from airflow_agent_provider.factory.batch import SUBMIT_TASK_PREFIX
    from airflow_agent_provider.hooks.store import get_store

    figures = Figures(name, mode)
    workflow = parse_workflow(yaml.safe_dump(data, sort_keys=False), work / f"{data['name']}.yaml")
    agent_ids = {workflow.agent_id(m, a.name) for m, a in workflow.iter_agents()}
    figures.agents = len(agent_ids)
    dag = build_dag(workflow)
    _sync_to_db(dag)
    server.reset()  # counters and batches; it also restores the start configuration
    server.batch_configure(processing_seconds=batch_seconds)
    times.clear()
    started = time.monotonic()
    try:
        run = dag.test()
        figures.state = str(run.state)
    except Exception as exc:  # a failed run is a figure too; the bench goes on
        figures.state = "error"
        figures.error = f"{type(exc).__name__}: {exc}"[:300]
        return figures
    finally:
        figures.wall_s = time.monotonic() - started
    summary = Ledger(get_store()).run_summary(dag.dag_id, run.run_id)
    figures.usd = summary.total.usd
    figures.realtime_usd, figures.realtime_calls = (
        summary.deliveries["realtime"].usd,
        summary.deliveries["realtime"].calls,
    )
    figures.batch_usd, figures.batch_calls = (
        summary.deliveries["batch"].usd,
        summary.deliveries["batch"].calls,
    )
    figures.api_calls, figures.batch_api_calls = _api_calls(server.stats())
    figures.batches_created = sum(sum(m.values()) for m in server.batch_stats()["created"].values())
    figures.worker_s, figures.deferred_s, figures.task_instances = times.totals(
        lambda task_id: task_id in agent_ids or task_id.split(".")[-1].startswith(SUBMIT_TASK_PREFIX)
    )
    return figures


# ---------------------------------------------------------------------------------------- report


def _row(label: str, values: list[str]) -> str:
    return f"  {label:<34}" + "".join(f"{v:>16}" for v in values)


def report(results: list[Figures]) -> None:
    for name in dict.fromkeys(f.workflow for f in results):
        pair = {f.mode: f for f in results if f.workflow == name}
        modes = [m for m in MODES if m in pair]
        print(f"\n{name}  ({pair[modes[0]].agents} agents)")
        print(_row("", modes))
        rows = [
            ("run state", lambda f: f.state),
            ("wall (dag.test, sequential) s", lambda f: f"{f.wall_s:.1f}"),
            ("cost from the ledger USD", lambda f: f"{f.usd:.6f}"),
            ("  realtime calls / USD", lambda f: f"{f.realtime_calls} / {f.realtime_usd:.5f}"),
            ("  batch requests / USD", lambda f: f"{f.batch_calls} / {f.batch_usd:.5f}"),
            ("provider API calls", lambda f: str(f.api_calls)),
            ("  of them batch API calls", lambda f: str(f.batch_api_calls)),
            ("  batches created", lambda f: str(f.batches_created)),
            ("task instances timed", lambda f: str(f.task_instances)),
            ("worker-slot seconds", lambda f: f"{f.worker_s:.1f}"),
            ("deferred seconds (no slot held)", lambda f: f"{f.deferred_s:.1f}"),
        ]
        for label, value in rows:
            print(_row(label, [value(pair[m]) for m in modes]))
        for mode in modes:
            if pair[mode].error:
                print(f"  {mode} error: {pair[mode].error}")
        if {"realtime", "batch"} <= set(pair) and pair["realtime"].usd > 0:
            rt, bt = pair["realtime"], pair["batch"]
            print(f"  batch / realtime cost: {bt.usd / rt.usd:.3f}x (the batchable part alone: ", end="")
            batchable_rt = rt.usd - bt.realtime_usd  # what the agents that went batch cost in real time
            print(f"{bt.batch_usd / batchable_rt:.3f}x)" if batchable_rt > 0 else "n/a)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500, help="for_each items (at most 1024)")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per real-time call")
    parser.add_argument("--batch-seconds", type=float, default=3.0, help="seconds until a batch is answered")
    parser.add_argument("--only", default="erp,for_each", help="comma list of erp, for_each")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    _environment(home)
    import subprocess

    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)

    from airflow_agent_provider.testing.llm_server import LLMServer

    server = LLMServer(latency=args.latency).start()
    os.environ.update(server.connection_env())
    times = SlotTimes()
    install_timer(times)
    print(
        f"bench_batch: latency {args.latency}s per real-time call, batches answered after "
        f"{args.batch_seconds}s, {args.items} for_each items; AIRFLOW_HOME {home / 'airflow'}",
        flush=True,
    )
    results: list[Figures] = []
    try:
        for name in [n.strip() for n in args.only.split(",") if n.strip()]:
            for mode in MODES:
                data = erp_workflow(mode) if name == "erp" else for_each_workflow(mode, args.items)
                print(f"... {name} {mode}", flush=True)
                figures = run_one(server, times, name, mode, data, home, args.batch_seconds)
                print(f"    {figures.state} in {figures.wall_s:.1f}s", flush=True)
                results.append(figures)
    finally:
        server.stop()
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
