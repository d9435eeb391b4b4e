"""Issue 5 end to end: injected faults, breaker and fallback, timeouts, in real Airflow runs."""

from __future__ import annotations

import json
import socket

import pytest

from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.hooks.store import get_store
from airflow_agent_provider.operators.result import RESULT_TASK_ID
from tests.e2e._workflows import all_agents, variant
from tests.fixtures.airflow_env import task_states, xcom_result

pytestmark = pytest.mark.airflow


def test_erp_completes_every_agent_under_30_percent_injected_faults(tmp_path, run_dag, llm_connections):
    llm_connections.configure(
        fail_rate=0.3, fail_mix=[429, 500, 529, "slow"], slow_seconds=2.0, retry_after="1", seed=11
    )

    def mutate(data):
        data["defaults"]["request_timeout"] = "1s"  # a slow answer times out: a transient error, retried
        data["defaults"]["call_retries"] = {"max_attempts": 10, "base_delay": "0.05s", "max_delay": "2s"}
        data["circuit_breaker"] = {"failure_threshold": 50}

    workflow, dag = variant(tmp_path, "erp_month_end.yaml", "e2e_faults", mutate)
    run = run_dag(dag)
    states = task_states(run)
    assert str(run.state) == "success", states
    result = xcom_result(run, RESULT_TASK_ID)
    assert result["outcome"] == "success"
    assert all(a["status"] == "success" for a in result["agents"].values())

    stats = llm_connections.stats()
    statuses = stats["by_status"]
    assert any(str(code) in statuses for code in (429, 500, 529)), statuses  # faults really happened
    # the ledger holds exactly the successful calls and their cost
    summary = Ledger(get_store()).run_summary(dag.dag_id, run.run_id)
    assert summary.total.calls == sum(a["rounds"] for a in result["agents"].values())
    assert summary.total.usd == pytest.approx(result["totals"]["cost_usd"], rel=1e-6)
    requests = sum(xcom_result(run, t)["requests"] for t in result["agents"])
    assert requests > summary.total.calls  # retries happened inside the calls


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_breaker_opens_on_a_dead_provider_and_the_fallback_answers(
    tmp_path, run_dag, llm_connections, monkeypatch
):
    dead = json.dumps(
        {"conn_type": "agent_openai", "host": f"http://127.0.0.1:{_closed_port()}/v1", "password": "k"}
    )
    monkeypatch.setenv("AIRFLOW_CONN_DEAD_OPENAI", dead)

    def mutate(data):
        data["circuit_breaker"] = {"failure_threshold": 2, "window": "10m", "reset_timeout": "10m"}
        data["defaults"].update(
            connection="dead_openai",
            model="gpt-5-nano",
            call_retries={"max_attempts": 2, "base_delay": "0.01s", "max_delay": "0.1s"},
            fallbacks=[{"provider": "anthropic", "model": "claude-haiku-4-5"}],
        )

    workflow, dag = variant(tmp_path, "quickstart.yaml", "e2e_breaker", mutate)
    run = run_dag(dag)
    assert str(run.state) == "success"
    outcomes = []
    for task_id in ("Finance.payment_terms", "Finance.cash_position", "Finance.payment_note"):
        agent = xcom_result(run, task_id)
        assert agent["answered_by"] == "anthropic/claude-haiku-4-5"
        outcomes.append(agent["fallbacks_used"][0]["attempts"][0]["outcome"])
    # two calls gave up on the dead provider and opened its breaker; the third failed fast
    assert outcomes == ["transient_error", "transient_error", "circuit_open"]
    assert llm_connections.stats()["by_path"] == {"/v1/messages": 3}
    from airflow_agent_provider.resilience.breaker import CircuitBreaker

    assert CircuitBreaker(get_store(), "openai/gpt-5-nano").state == "open"


def test_per_call_timeout_and_execution_timeout_fail_with_clear_messages(tmp_path, run_dag, llm_connections):
    def mutate(data):
        agents = list(all_agents(data))
        agents[0].update(
            request_timeout="0.5s",
            prompt=agents[0]["prompt"] + " [[latency:3]]",
            call_retries={"max_attempts": 2, "base_delay": "0.01s", "max_delay": "0.1s"},
        )
        agents[1].update(timeout="1s", prompt=agents[1]["prompt"] + " [[latency:4]]")
        data["allow_partial_completion"] = True
        for agent in agents[:2]:
            agent["critical"] = False

    workflow, dag = variant(tmp_path, "quickstart.yaml", "e2e_timeouts", mutate)
    run = run_dag(dag)
    result = xcom_result(run, RESULT_TASK_ID)
    call_timeout = result["agents"]["Finance.payment_terms"]
    assert call_timeout["status"] == "failed", call_timeout
    assert "Timeout" in call_timeout["reason"], call_timeout
    states = task_states(run)
    assert states["Finance.cash_position"] == "failed"  # execution_timeout
    assert result["outcome"] == "partial"
