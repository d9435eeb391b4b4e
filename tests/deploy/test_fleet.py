"""Triggerer-only agents on the native multi-process stack: a fleet that never needs a worker.

A tool-less agent with ``execution: triggerer`` is handed by the scheduler straight to the
triggerer (``start_from_trigger``), makes its model calls there and ends its task there
(``TaskSuccessEvent``). These tests run such workflows through the REST API on the real stack
(Postgres, Redis, CeleryExecutor with two workers, the triggerer) and check, from the outside:

* what the server saw (its own request log), what Airflow recorded (task instances, XCom, the
  ``workflow_result``) and what the shared Redis ledger holds;
* that no agent task was ever queued to a Celery worker, three ways: the task instance never got a
  ``queued_when`` nor a worker hostname, the scheduler never logged it among the tasks it set to
  queued, and no worker logged it among the workloads it executed (the ``workflow_result`` task,
  which does run on a worker, proves that both log checks see what they look for);
* that limits and failures behave as on the worker path: a run budget refuses the agents it
  cannot cover before they call, a transient error waits for the provider's ``retry-after``, a
  permanent one fails at once.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.deploy.stack_reads import completions, ledger_entries

if TYPE_CHECKING:
    from airflow_agent_provider.deploy.local import LocalDeployment

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]

RETRY_AFTER_S = 4


# ------------------------------------------------------------------------------------------ helpers


def _xcom(stack: LocalDeployment, dag_id: str, run_id: str, task_id: str) -> Any:
    value = stack.rest.call(
        "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    )["value"]
    return json.loads(value) if isinstance(value, str) else value


def _log_text(path: Path, offset: int) -> str:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace")


class _Logs:
    """Where each component's log stood before a run, to read only what the run added."""

    NAMES = ("airflow-scheduler", "worker1", "worker2")

    def __init__(self, stack: LocalDeployment) -> None:
        self.stack = stack
        self.offsets = {name: self._path(name).stat().st_size for name in self.NAMES}

    def _path(self, name: str) -> Path:
        return self.stack.logs / f"{name}.log"

    def since(self, name: str) -> str:
        return _log_text(self._path(name), self.offsets[name])

    def queued_by_scheduler(self, dag_id: str) -> set[str]:
        """Task ids the scheduler logged under "Setting the following tasks to queued state"."""
        return set(
            re.findall(rf"<TaskInstance: {re.escape(dag_id)}\.(\S+) ", self.since("airflow-scheduler"))
        )

    def executed_by_workers(self, dag_id: str) -> set[str]:
        """Task ids in the workers' "Executing workload in Celery" lines."""
        found: set[str] = set()
        for name in ("worker1", "worker2"):
            for line in self.since(name).splitlines():
                if "Executing workload in Celery" in line and f"dag_id='{dag_id}'" in line:
                    found.update(re.findall(r"task_id='([^']+)'", line))
        return found


def _trigger_log(stack: LocalDeployment, dag_id: str, run_id: str, task_id: str, attempt: int = 1) -> str:
    """What the triggerer logged for one try of a task (its ``attempt=N.log.trigger.*.log`` files)."""
    folder = stack.logs / "airflow" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    return "".join(
        p.read_text(errors="replace") for p in sorted(folder.glob(f"attempt={attempt}.log.trigger.*.log"))
    )


def _agents(tis: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [ti for ti in tis if ti["task_id"] != "workflow_result"]


def _run(stack: LocalDeployment, dag_id: str, timeout: float = 300) -> tuple[str, str]:
    run_id = stack.trigger(dag_id)
    return run_id, stack.wait(dag_id, run_id, timeout=timeout)


# ------------------------------------------------------------------------------------------ tests


def test_hundred_triggerer_only_agents_never_touch_a_worker(stack: LocalDeployment) -> None:
    dag_id = "fleet_triggerer_100"
    stack.wait_for_dag(dag_id)
    stack.llm.reset()
    logs = _Logs(stack)
    run_id, state = _run(stack, dag_id)
    assert state == "success"

    # exactly one call per agent, all answered
    calls = completions(stack)
    assert len(calls) == 100
    assert {e["status"] for e in calls} == {200}

    tis = stack.task_instances(dag_id, run_id)
    agents = _agents(tis)
    assert len(agents) == 100
    assert {ti["state"] for ti in agents} == {"success"}
    assert {ti["try_number"] for ti in agents} == {1}

    # never queued to a Celery worker: not in the metadata DB, not by the scheduler, not on a worker
    assert [ti["task_id"] for ti in agents if ti.get("queued_when")] == []
    assert [ti["task_id"] for ti in agents if (ti.get("hostname") or "").startswith("worker")] == []
    queued, executed = logs.queued_by_scheduler(dag_id), logs.executed_by_workers(dag_id)
    agent_ids = {ti["task_id"] for ti in agents}
    assert queued & agent_ids == set()
    assert executed & agent_ids == set()
    # ... while the log checks do see the one task of the run that runs on a worker
    assert "workflow_result" in queued
    assert "workflow_result" in executed

    # the triggerer deserialized the DAG once per side for all 100 tasks, not twice per task
    # (deploy/triggerer.py; the DAG's one version has been cached since the triggerer started)
    triggerer_log = (stack.logs / "airflow-triggerer.log").read_text(errors="replace")
    for side in ("supervisor", "trigger runner"):
        misses = re.findall(
            rf"Deserialized DAG {dag_id} \(version [^)]+\) in the triggerer's {side},", triggerer_log
        )
        assert len(misses) == 1, (side, misses)

    # every agent's result in its XCom and in workflow_result
    result = _xcom(stack, dag_id, run_id, "workflow_result")
    assert result["outcome"] == "success"
    assert sorted(result["agents"]) == sorted(agent_ids)
    for ti in agents:
        n = int(ti["task_id"].rsplit(".f", 1)[1])
        own = _xcom(stack, dag_id, run_id, ti["task_id"])
        assert own["status"] == "success"
        assert own["text"] == f"fleet {n}"
        assert own["usage"]["input_tokens"] == 100
        assert own["usage"]["output_tokens"] == 10
        assert own["cost_usd"] == pytest.approx(0.00012)
        summary = result["agents"][ti["task_id"]]
        assert summary["status"] == "success"
        assert summary["output"] == own["output"]
        assert summary["cost_usd"] == pytest.approx(own["cost_usd"])

    # the ledger holds one entry per agent and its total is the result's cost
    entries = ledger_entries(stack, dag_id, run_id)
    assert len(entries) == 100
    assert len({e.agent for e in entries}) == 100
    assert sum(e.usd for e in entries) == pytest.approx(result["totals"]["cost_usd"])
    assert result["totals"]["cost_usd"] == pytest.approx(100 * 0.00012)
    assert result["totals"]["cost_complete"] is True


def test_budget_for_half_the_fleet_refuses_the_rest_before_the_server(stack: LocalDeployment) -> None:
    """10 agents at exactly 1 USD per call under a 5 USD run budget, all in the triggerer at once."""
    dag_id = "fleet_budget_half"
    stack.wait_for_dag(dag_id)
    stack.llm.reset()
    run_id, state = _run(stack, dag_id)
    assert state == "success"  # allow_partial_completion: the run is partial, not failed

    # only the 5 covered agents reached the server
    calls = completions(stack)
    assert len(calls) == 5
    assert {e["status"] for e in calls} == {200}
    entries = ledger_entries(stack, dag_id, run_id)
    assert len(entries) == 5
    assert sum(e.usd for e in entries) == pytest.approx(5.0)

    agents = _agents(stack.task_instances(dag_id, run_id))
    assert Counter(ti["state"] for ti in agents) == {"success": 5, "failed": 5}
    # a refusal is permanent: no retry
    assert {ti["try_number"] for ti in agents} == {1}
    # the refusals were decided in the triggerer, before any call (the failure then ends on a worker,
    # where the agent's retry policy reads the classified error)
    refused_in_triggerer = {
        ti["task_id"]
        for ti in agents
        if "BudgetExceeded" in _trigger_log(stack, dag_id, run_id, ti["task_id"])
    }
    assert refused_in_triggerer == {ti["task_id"] for ti in agents if ti["state"] == "failed"}
    # the agents that succeeded never left the triggerer
    assert [ti["task_id"] for ti in agents if ti["state"] == "success" and ti.get("queued_when")] == []

    result = _xcom(stack, dag_id, run_id, "workflow_result")
    assert result["outcome"] == "partial"
    refused = {k: a for k, a in result["agents"].items() if a["status"] == "failed"}
    assert len(refused) == 5
    assert all("BudgetExceeded" in a["reason"] for a in refused.values())
    assert result["totals"]["cost_usd"] == pytest.approx(5.0)
    charged = {e.agent for e in entries}
    assert charged.isdisjoint({a["agent"] for a in refused.values()})


def test_transient_errors_wait_for_the_provider_and_a_401_fails_at_once(stack: LocalDeployment) -> None:
    """429 with retry-after, retried inside the call and by the task's retry policy; 401 not retried."""
    dag_id = "fleet_failures"
    stack.wait_for_dag(dag_id)
    stack.llm.reset()
    stack.llm.configure(retry_after=str(RETRY_AFTER_S))
    try:
        run_id, state = _run(stack, dag_id)
        calls = completions(stack)
    finally:
        stack.llm.reset()
    assert state == "success"  # allow_partial_completion: the 401 agent fails, the run is partial

    def calls_of(agent: str) -> list[dict[str, Any]]:
        return sorted((e for e in calls if e["user_excerpt"].endswith(agent)), key=lambda e: e["t_start"])

    tis = {ti["task_id"].split(".", 1)[1]: ti for ti in _agents(stack.task_instances(dag_id, run_id))}
    assert {name: ti["state"] for name, ti in tis.items()} == {
        "in_call": "success",
        "task_retry": "success",
        "unauthorized": "failed",
    }

    # in-call retry: one try, in the triggerer; the second request came after the provider's delay
    in_call = calls_of("in_call")
    assert [e["status"] for e in in_call] == [429, 200]
    assert in_call[1]["t_start"] - in_call[0]["t_end"] >= RETRY_AFTER_S
    assert tis["in_call"]["try_number"] == 1
    assert not tis["in_call"].get("queued_when")

    # no in-call retry: the task failed its first try and the retry policy waited for the provider
    # (retry-after 4 s, not the task's 1 s base delay) before the second try
    task_retry = calls_of("task_retry")
    assert [e["status"] for e in task_retry] == [429, 200]
    assert task_retry[1]["t_start"] - task_retry[0]["t_end"] >= RETRY_AFTER_S
    assert tis["task_retry"]["try_number"] == 2
    tries = stack.rest.call(
        "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/Ops.task_retry/tries"
    )
    # Airflow 3.3 files the first try in the history as "failed" (or "up_for_retry"); what matters is
    # that a second try ran after the provider's delay and succeeded (asserted above and here).
    history = [t["state"] for t in sorted(tries["task_instances"], key=lambda t: t["try_number"])]
    assert len(history) == 2
    assert history[0] in ("up_for_retry", "failed")
    assert history[1] == "success"

    # 401: permanent, fails at once although the agent has 2 retries
    unauthorized = calls_of("unauthorized")
    assert [e["status"] for e in unauthorized] == [401]
    assert tis["unauthorized"]["try_number"] == 1

    result = _xcom(stack, dag_id, run_id, "workflow_result")
    assert result["agents"]["Ops.unauthorized"]["status"] == "failed"
    assert (
        "401" in result["agents"]["Ops.unauthorized"]["reason"]
        or "uthentication" in result["agents"]["Ops.unauthorized"]["reason"]
    )
    assert result["agents"]["Ops.task_retry"]["output"] == "task retry"
    assert result["agents"]["Ops.in_call"]["output"] == "in-call retry"
