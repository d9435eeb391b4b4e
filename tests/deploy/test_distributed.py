"""End to end on the native multi-process stack: Postgres, Redis, CeleryExecutor, two workers.

Runs are triggered through the REST API, exactly as an operator or an external system would, and
checked through the REST API and the LLM server's own counters. The last test stops the stack and
checks that nothing it started survives: no process, no listening port.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_agent_provider.deploy.local import LocalDeployment
from airflow_agent_provider.deploy.processes import Proc, members, port_open
from tests.deploy.conftest import POOL_SLOTS

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]


def _workers_used(tis: list[dict]) -> set[str]:
    return {ti["hostname"].split(".", 1)[0] for ti in tis}


def test_stack_is_healthy(stack: LocalDeployment) -> None:
    report = stack.status()
    assert set(report) == {"postgres", "redis", "llm-server", "airflow-apiserver", "airflow-scheduler",
                           "airflow-dag-processor", "airflow-triggerer", "worker1", "worker2"}
    assert {name: row["healthy"] for name, row in report.items()} == {name: True for name in report}
    logs = {Path(row["log"]) for row in report.values()}
    assert len(logs) == len(report) and all(log.exists() for log in logs)


def test_erp_month_end_runs_on_both_workers(stack: LocalDeployment) -> None:
    stack.llm.reset()
    run_id = stack.trigger("erp_month_end")
    assert stack.wait("erp_month_end", run_id, timeout=400) == "success"
    tis = stack.task_instances("erp_month_end", run_id)
    assert len(tis) == 13
    assert {ti["state"] for ti in tis} == {"success"}
    assert _workers_used(tis) == {"worker1", "worker2"}
    assert len({ti["pid"] for ti in tis}) == len(tis)
    assert stack.llm.stats()["by_status"].get("200", 0) >= 12


def test_pool_of_four_bounds_sixty_agents(stack: LocalDeployment) -> None:
    """60 agents in one 4-slot pool: never more than 4 calls in flight, though 2 workers x 2 slots are free."""
    stack.llm.reset()
    stack.llm.configure(latency=0.5)
    try:
        run_id = stack.trigger("deploy_pool_60")
        assert stack.wait("deploy_pool_60", run_id, timeout=600) == "success"
        stats = stack.llm.stats()
    finally:
        stack.llm.reset()
    completions = [e for e in stats["log"] if e["path"].endswith("/chat/completions")]
    assert len(completions) == 60
    assert 2 <= stats["max_in_flight"] <= POOL_SLOTS
    tis = stack.task_instances("deploy_pool_60", run_id)
    agents = [ti for ti in tis if ti["pool"] == "llm_pool"]
    assert len(agents) == 60 and {ti["state"] for ti in agents} == {"success"}
    assert _workers_used(agents) == {"worker1", "worker2"}


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
    assert len(pids) >= len(procs) and all(port_open(p) for p in (stack.state["ports"]["api"],
                                                                   stack.state["ports"]["postgres"]))
    report = stack.down()
    assert report["still_running"] == [] and report["ports_open"] == []
    assert [pid for pid in pids if _alive(pid)] == []
    assert [port for port in ports if port_open(port)] == []
    assert os.getpid() not in pids
