"""Issues 3 and 4 end to end: shared limits and budgets in real Airflow runs, checked on the server."""

from __future__ import annotations

import pytest

from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.hooks.store import get_store
from airflow_agent_provider.operators.result import RESULT_TASK_ID
from tests.e2e._workflows import all_agents, variant
from tests.fixtures.airflow_env import task_states, xcom_result
from tests.sensors.test_budget_sensor_runs import _spend_today

pytestmark = pytest.mark.airflow


@pytest.mark.slow
def test_tight_rate_limit_holds_on_the_server_and_waits_in_the_triggerer(tmp_path, run_dag, llm_connections):
    """3 agents, 2 requests per minute: the third waits ~60 s (deferred: in the trigger), never a 3rd in a minute."""

    def mutate(data):
        data["defaults"].update(model="gpt-4.1-mini", deferrable=True)  # a key no other test uses
        data["rate_limits"] = {"openai/gpt-4.1-mini": {"requests_per_minute": 2}}

    workflow, dag = variant(tmp_path, "quickstart.yaml", "e2e_rate_limit", mutate)
    run = run_dag(dag)
    assert str(run.state) == "success"
    log = sorted(llm_connections.stats()["log"], key=lambda e: e["t_start"])
    assert len(log) == 3
    for entry in log:  # no 60 s window holds more than 2 requests
        assert sum(1 for e in log if entry["t_start"] <= e["t_start"] < entry["t_start"] + 60) <= 2
    assert log[2]["t_start"] - log[0]["t_start"] >= 59.0
    waits = [
        xcom_result(run, t)["wait_s"]
        for t in ("Finance.payment_terms", "Finance.cash_position", "Finance.payment_note")
    ]
    assert max(waits) >= 55.0  # the wait is recorded in the agent's result


def test_budget_running_out_mid_run_refuses_calls_before_they_reach_the_server(
    tmp_path, run_dag, llm_connections
):
    budget = 0.03

    def mutate(data):
        data["cost_budget"] = budget
        data.pop("daily_budget", None)
        data.pop("monthly_budget", None)
        for agent in all_agents(data):
            agent["max_tokens"] = 1000
            agent["prompt"] += " [[usage: out=1000]]"  # every answer uses its whole output allowance

    workflow, dag = variant(tmp_path, "erp_month_end.yaml", "e2e_budget", mutate)
    run = run_dag(dag)
    result = xcom_result(run, RESULT_TASK_ID)
    states = task_states(run)
    summary = Ledger(get_store()).run_summary(dag.dag_id, run.run_id)

    assert summary.total.usd <= budget  # never overshot
    refused = [t for t, a in result["agents"].items() if a["status"] == "failed"]
    assert refused, "the budget should have run out mid-run"
    for task_id in refused:
        assert "BudgetExceeded" in result["agents"][task_id]["reason"], result["agents"][task_id]
    # every request that reached the server was a call that got charged, exactly once
    served = [e for e in llm_connections.stats()["log"] if e["status"] == 200]
    assert len(served) == summary.total.calls
    assert summary.total.calls == sum(a["rounds"] or 0 for a in result["agents"].values())
    # the outcome follows the partial-completion rules: a refused critical agent fails the run
    critical_refused = any(result["agents"][t]["critical"] for t in refused)
    assert result["outcome"] == ("failed" if critical_refused else "partial")
    assert str(run.state) == ("failed" if critical_refused else "success")
    assert states[RESULT_TASK_ID] == ("failed" if critical_refused else "success")


def test_agent_cost_limit_is_checked_before_the_call(tmp_path, run_dag, llm_connections):
    def mutate(data):
        data["modules"]["Finance"]["agents"][0]["cost_limit"] = 0.0001  # payroll_journal: far below one call

    workflow, dag = variant(tmp_path, "erp_month_end.yaml", "e2e_cost_limit", mutate)
    run = run_dag(dag)
    result = xcom_result(run, RESULT_TASK_ID)
    agent = result["agents"]["Finance.payroll_journal"]
    assert agent["status"] == "failed"
    assert "BudgetExceeded" in agent["reason"]
    assert "agent:" in agent["reason"]
    assert not any(
        "Draft the month-end payroll journal" in (e.get("user_excerpt") or "")
        for e in llm_connections.stats()["log"]
    )


def test_module_budget_gate_holds_the_module_back(tmp_path, run_dag, llm_connections):
    """A day-scope gate whose limit earlier runs already reached skips Compliance; the run is partial."""

    def mutate(data):
        data["modules"]["Compliance"]["budget_gate"] = {"scope": "day", "max_spend": 0.5}

    workflow, dag = variant(tmp_path, "erp_month_end.yaml", "e2e_gate", mutate)
    _spend_today("e2e_gate", 0.75)  # earlier runs today already spent more than the gate allows
    run = run_dag(dag)
    states = task_states(run)
    assert states["Compliance.budget_gate"] == "skipped"
    for agent in ("Compliance.sod_review", "Compliance.controls_test", "Compliance.audit_report"):
        assert states[agent] == "skipped"
    result = xcom_result(run, RESULT_TASK_ID)
    assert result["outcome"] == "partial"
    assert str(run.state) == "success"
    assert "budget gate" in result["agents"]["Compliance.audit_report"]["reason"]
    assert not any(
        "Check policy SOD-01" in (e.get("user_excerpt") or "") for e in llm_connections.stats()["log"]
    )
