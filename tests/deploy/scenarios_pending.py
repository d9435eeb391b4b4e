"""Distributed scenarios that need limits, budgets and the ledger wired into ``LLMAgentOperator``.

Not collected by default (the file name does not match ``test_*.py``): until the operator charges
the shared store, these fail for a known reason, and a failing-by-design test would only slow CI.
Run them explicitly, on their own stack::

    pytest -m distributed tests/deploy/scenarios_pending.py

Status after the guarded pipeline landed (3e7cca4/d2c941c): the budget and SIGKILL scenarios pass;
the rate-limit one does not yet (see its docstring). Rename the file to ``test_scenarios.py`` (or
move the passing tests into ``test_distributed.py``) when CI time allows: this module adds about
3.5 minutes (its own stack, then three runs). Each scenario runs across both
Celery workers, so every limit must hold across processes, which only the Redis store can do.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.deploy.local import LocalDeployment
from airflow_agent_provider.stores import store_from_url

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]


def _completions(stack: LocalDeployment) -> list[dict]:
    return [e for e in stack.llm.stats()["log"] if e["path"].endswith("/chat/completions")]


def _ledger_entries(stack: LocalDeployment, dag_id: str, run_id: str) -> list:
    store = store_from_url(stack.env["AIRFLOW__AGENT_PROVIDER__STORE_URL"])
    try:
        return Ledger(store).entries(dag_id, run_id)
    finally:
        store.close()


def test_rate_limit_holds_across_both_workers(stack: LocalDeployment) -> None:
    """36 agents under 30 requests/minute: no 60-second window of the server's log holds more than 30.

    Not passing yet: one run ended ``failed`` under load; an isolated run succeeded but the server
    answered 51 successful calls for 36 single-call agents, so some calls are sent twice.
    """
    stack.llm.reset()
    run_id = stack.trigger("deploy_rate_limited")
    assert stack.wait("deploy_rate_limited", run_id, timeout=600) == "success"
    starts = sorted(e["t_start"] for e in _completions(stack) if e["status"] == 200)
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
    entries = _ledger_entries(stack, "deploy_budget_half", run_id)
    assert len(entries) == 5
    assert sum(e.usd for e in entries) == pytest.approx(5.0)
    assert len([e for e in _completions(stack) if e["status"] == 200]) == 5
    states = Counter(ti["state"] for ti in stack.task_instances("deploy_budget_half", run_id)
                     if ti["task_id"].startswith("Finance."))
    assert states["success"] == 5


def test_sigkill_of_a_worker_mid_run_charges_each_call_once(stack: LocalDeployment) -> None:
    """Worker 1 dies with calls in flight; its tasks are retried on worker 2 and nothing is charged twice.

    Runs last in the module: the stack has one worker afterwards.
    """
    stack.llm.reset()
    run_id = stack.trigger("deploy_kill_worker")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = [ti for ti in stack.task_instances("deploy_kill_worker", run_id)
                   if ti["state"] == "running" and ti["hostname"].startswith("worker1.")]
        if running and stack.llm.stats()["in_flight"] > 0:
            break
        time.sleep(0.5)
    else:
        pytest.fail("no task of deploy_kill_worker was running on worker1")
    stack.kill_worker(1)
    assert stack.wait("deploy_kill_worker", run_id, timeout=600) == "success"
    tis = [ti for ti in stack.task_instances("deploy_kill_worker", run_id) if ti["task_id"].startswith("Ops.")]
    assert {ti["state"] for ti in tis} == {"success"}
    assert any(ti["try_number"] > 1 for ti in tis)
    entries = _ledger_entries(stack, "deploy_kill_worker", run_id)
    per_agent = Counter(e.agent for e in entries)
    assert sorted(per_agent) == sorted(ti["task_id"].split(".", 1)[1] for ti in tis)
    assert set(per_agent.values()) == {1}
    successful_calls = [e for e in _completions(stack) if e["status"] == 200]
    assert len(entries) <= len(successful_calls)
