"""End to end on the native multi-process stack: Postgres, Redis, CeleryExecutor, two workers.

Runs are triggered through the REST API, exactly as an operator or an external system would, and
checked through the REST API, the LLM server's own counters and the shared Redis store's ledger.
Every limit here must hold across two worker processes, which only the shared store can do.
The order matters: the SIGKILL scenario leaves one worker, and the last test stops the stack and
checks that nothing it started survives: no process, no listening port.
"""

from __future__ import annotations

import os
import time
import urllib.error
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_agent_provider.deploy.processes import Proc, members, port_open
from tests.deploy.conftest import POOL_SLOTS
from tests.deploy.stack_reads import completions, ledger_entries

if TYPE_CHECKING:
    from airflow_agent_provider.deploy.local import LocalDeployment

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]


def _workers_used(tis: list[dict]) -> set[str]:
    return {ti["hostname"].split(".", 1)[0] for ti in tis}


def test_stack_is_healthy(stack: LocalDeployment) -> None:
    report = stack.status()
    assert set(report) == {
        "postgres",
        "redis",
        "llm-server",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "worker1",
        "worker2",
    }
    assert {name: row["healthy"] for name, row in report.items()} == {name: True for name in report}
    logs = {Path(row["log"]) for row in report.values()}
    assert len(logs) == len(report)
    assert all(log.exists() for log in logs)
    sessions = stack.session_pids()  # what bench_fleet counts CPU time over
    assert set(sessions) == set(report)
    assert all(row["pid"] in sessions[name] for name, row in report.items())
    assert len(sessions["worker1"]) > 1  # the Celery worker and its pool processes
    # the dag-processor runs with the fix for Airflow 3.3's callback-only parses (deploy/dag_processor.py)
    cmdline = Path(f"/proc/{report['airflow-dag-processor']['pid']}/cmdline").read_bytes().split(b"\0")
    assert b"airflow_agent_provider.deploy.dag_processor" in cmdline
    # and the triggerer with the DAG cache for start_from_trigger tasks (deploy/triggerer.py)
    cmdline = Path(f"/proc/{report['airflow-triggerer']['pid']}/cmdline").read_bytes().split(b"\0")
    assert b"airflow_agent_provider.deploy.triggerer" in cmdline


def test_workers_preload_the_provider_and_the_sdks(stack: LocalDeployment) -> None:
    """A task process inherits the worker's preload (deploy/worker_preload.py): it imports none of it."""
    run_id = stack.trigger("preload_probe")
    assert stack.wait("preload_probe", run_id, timeout=120) == "success"
    entry = stack.rest.call(
        "GET", f"/api/v2/dags/preload_probe/dagRuns/{run_id}/taskInstances/loaded/xcomEntries/return_value"
    )
    assert entry["value"] == {
        "openai": True,
        "anthropic": True,
        "genai_prices": True,
        "airflow_agent_provider.guard.pipeline": True,
    }


def test_the_execution_api_is_warm_before_the_first_task_starts(stack: LocalDeployment) -> None:
    """
    ``up`` asks the execution API once before any worker starts (settings.API_READY_PATHS): its
    first request builds its routes, which stalls the API server for seconds, and the first task's
    ``ti_run`` would otherwise pay that, time out at the supervisor's 5 s and be retried.
    """
    log = Path(stack.status()["airflow-apiserver"]["log"]).read_text()
    requests = [line for line in log.splitlines() if "request finished" in line and "/execution/" in line]
    first_health = next(i for i, line in enumerate(requests) if "path=/execution/health " in line)
    runs = [i for i, line in enumerate(requests) if "/execution/task-instances/" in line and "/run " in line]
    assert runs, "no task started yet: this test runs after the preload probe"
    assert first_health < runs[0]
    assert "status_code=200" in requests[runs[0]]


def test_run_state_reads_the_exact_run_among_runs_its_id_prefixes(stack: LocalDeployment) -> None:
    """
    ``run_state`` reads the run list filtered by id prefix (Airflow's single-run endpoint loads every
    task instance of the run): a run whose id extends another's is listed too and must not be taken
    for it, and a run that does not exist still gets the API's 404.
    """
    longer, exact = "state_probe_longer", "state_probe"
    body = {"logical_date": None, "conf": {}}
    stack.rest.call("POST", "/api/v2/dags/preload_probe/dagRuns", {**body, "dag_run_id": longer})
    assert stack.wait("preload_probe", longer, timeout=120) == "success"
    stack.rest.call("POST", "/api/v2/dags/preload_probe/dagRuns", {**body, "dag_run_id": exact})
    listed = stack.rest.call("GET", "/api/v2/dags/preload_probe/dagRuns?run_id_prefix_pattern=state_probe")
    assert {run["dag_run_id"] for run in listed["dag_runs"]} == {longer, exact}
    # Just triggered: the new run is at most queued or running, never the other run's success.
    assert stack.run_state("preload_probe", exact) in ("queued", "running")
    assert stack.run_state("preload_probe", longer) == "success"
    assert stack.wait("preload_probe", exact, timeout=120) == "success"
    with pytest.raises(urllib.error.HTTPError) as err:
        stack.run_state("preload_probe", "state_probe_none")
    assert err.value.code == 404


def test_erp_month_end_runs_on_both_workers(stack: LocalDeployment) -> None:
    stack.llm.reset()
    run_id = stack.trigger("erp_month_end")
    assert stack.wait("erp_month_end", run_id, timeout=400) == "success"
    tis = stack.task_instances("erp_month_end", run_id)
    assert len(tis) == 14  # 12 agents, the budget gate and workflow_result
    assert {ti["state"] for ti in tis} == {"success"}
    assert _workers_used(tis) == {"worker1", "worker2"}
    assert len({ti["pid"] for ti in tis}) == len(tis)
    assert stack.llm.stats()["by_status"].get("200", 0) >= 12


def test_pool_of_four_bounds_its_agents(stack: LocalDeployment) -> None:
    """24 agents in one 4-slot pool: never more than 4 calls in flight, on both workers."""
    stack.llm.reset()
    stack.llm.configure(latency=0.5)
    try:
        run_id = stack.trigger("deploy_pool_24")
        assert stack.wait("deploy_pool_24", run_id, timeout=600) == "success"
        stats = stack.llm.stats()
    finally:
        stack.llm.reset()
    completions = [e for e in stats["log"] if e["path"].endswith("/chat/completions")]
    assert len(completions) == 24
    assert 2 <= stats["max_in_flight"] <= POOL_SLOTS
    tis = stack.task_instances("deploy_pool_24", run_id)
    agents = [ti for ti in tis if ti["pool"] == "llm_pool"]
    assert len(agents) == 24
    assert {ti["state"] for ti in agents} == {"success"}
    assert _workers_used(agents) == {"worker1", "worker2"}


def test_rate_limit_holds_across_both_workers(stack: LocalDeployment) -> None:
    """36 agents under 30 requests/minute: no 60-second window of the server's log holds more than 30."""
    stack.llm.reset()
    run_id = stack.trigger("deploy_rate_limited")
    assert stack.wait("deploy_rate_limited", run_id, timeout=600) == "success"
    starts = sorted(e["t_start"] for e in completions(stack) if e["status"] == 200)
    assert len(starts) == 36
    worst = max(sum(1 for t in starts if s <= t < s + 60) for s in starts)
    assert worst <= 30
    assert starts[-1] - starts[0] >= 60
    tis = stack.task_instances("deploy_rate_limited", run_id)
    assert {ti["hostname"].split(".", 1)[0] for ti in tis} == {"worker1", "worker2"}


def test_budget_covering_half_the_agents(stack: LocalDeployment) -> None:
    """10 agents at exactly 1 USD per call, a 5 USD run budget: 5 succeed, 5 are refused before calling."""
    stack.llm.reset()
    run_id = stack.trigger("deploy_budget_half")
    assert stack.wait("deploy_budget_half", run_id, timeout=300) == "success"
    entries = ledger_entries(stack, "deploy_budget_half", run_id)
    assert len(entries) == 5
    assert sum(e.usd for e in entries) == pytest.approx(5.0)
    assert len([e for e in completions(stack) if e["status"] == 200]) == 5
    states = Counter(
        ti["state"]
        for ti in stack.task_instances("deploy_budget_half", run_id)
        if ti["task_id"].startswith("Finance.")
    )
    assert states == {"success": 5, "failed": 5}
    # the refused agents say why, and the run ends as its partial-completion policy says
    result = stack.rest.call(
        "GET",
        f"/api/v2/dags/deploy_budget_half/dagRuns/{run_id}/taskInstances/workflow_result/"
        "xcomEntries/return_value",
    )["value"]
    result = result if isinstance(result, dict) else __import__("json").loads(result)
    assert result["outcome"] == "partial"
    refused = [a for a in result["agents"].values() if a["status"] == "failed"]
    assert len(refused) == 5
    assert all("BudgetExceeded" in a["reason"] for a in refused)


def test_sigkill_of_a_worker_mid_run_charges_each_call_once(stack: LocalDeployment) -> None:
    """Worker 1 dies with calls in flight; its tasks are retried on worker 2 and nothing is charged twice.

    Runs last before ``down``: the stack has one worker afterwards.
    """
    stack.llm.reset()
    run_id = stack.trigger("deploy_kill_worker")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = [
            ti
            for ti in stack.task_instances("deploy_kill_worker", run_id)
            if ti["state"] == "running" and ti["hostname"].startswith("worker1.")
        ]
        if running and stack.llm.stats()["in_flight"] > 0:
            break
        time.sleep(0.5)
    else:
        pytest.fail("no task of deploy_kill_worker was running on worker1")
    stack.kill_worker(1)
    assert stack.wait("deploy_kill_worker", run_id, timeout=600) == "success"
    tis = [
        ti for ti in stack.task_instances("deploy_kill_worker", run_id) if ti["task_id"].startswith("Ops.")
    ]
    assert {ti["state"] for ti in tis} == {"success"}
    assert any(ti["try_number"] > 1 for ti in tis)
    entries = ledger_entries(stack, "deploy_kill_worker", run_id)
    per_agent = Counter(e.agent for e in entries)
    assert sorted(per_agent) == sorted(ti["task_id"].split(".", 1)[1] for ti in tis)
    assert set(per_agent.values()) == {1}
    successful_calls = [e for e in completions(stack) if e["status"] == 200]
    assert len(entries) <= len(successful_calls)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_down_leaves_no_process_and_no_port(stack: LocalDeployment) -> None:
    procs = [Proc.from_dict(p) for p in stack.state["processes"]]
    pids = {pid for proc in procs for pid in members(proc)}
    ports = list(stack.state["ports"].values())
    assert len(pids) >= len(procs)
    assert all(port_open(p) for p in (stack.state["ports"]["api"], stack.state["ports"]["postgres"]))
    report = stack.down()
    assert report["still_running"] == []
    assert report["ports_open"] == []
    assert [pid for pid in pids if _alive(pid)] == []
    assert [port for port in ports if port_open(port)] == []
    assert os.getpid() not in pids
