"""End to end: the ERP example as real Airflow runs (dag.test) against the local LLM server.

The server counts requests, so "a dependant never called the model" is checked where it matters:
on the wire.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_agent_provider.definitions import parse_workflow
from airflow_agent_provider.factory import build_dag
from airflow_agent_provider.operators.result import RESULT_TASK_ID
from tests.fixtures.airflow_env import task_states, xcom_result

pytestmark = pytest.mark.airflow

EXAMPLE = Path(__file__).parents[2] / "dags" / "workflows" / "erp_month_end.yaml"


def _erp(tmp_path: Path, name: str, *, prompt_suffix: dict[str, str] | None = None):
    """The ERP example without task retries (a retry would wait its delay), optionally with markers."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["name"] = name
    data["defaults"]["retries"] = {"attempts": 0}
    for module in data["modules"].values():
        for agent in module["agents"]:
            suffix = (prompt_suffix or {}).get(agent["name"])
            if suffix:
                agent["prompt"] = agent["prompt"] + " " + suffix
    workflow = parse_workflow(yaml.safe_dump(data, sort_keys=False), tmp_path / f"{name}.yaml")
    return workflow, build_dag(workflow)


def _prompt_head(workflow, qualified: str) -> str:
    return workflow.get_agent(qualified).prompt.strip()[:40]


def _requests_for(stats: dict, workflow, qualified: str) -> int:
    head = _prompt_head(workflow, qualified)
    return sum(1 for entry in stats["log"] if head in (entry.get("user_excerpt") or ""))


def test_erp_example_run_succeeds_with_usage_and_cost(tmp_path, run_dag, llm_connections):
    workflow, dag = _erp(tmp_path, "erp_e2e_ok")
    run = run_dag(dag)
    assert str(run.state) == "success"
    states = task_states(run)
    assert all(state == "success" for state in states.values()), states
    result = xcom_result(run, RESULT_TASK_ID)
    assert result["outcome"] == "success"
    assert len(result["agents"]) >= 11
    for task_id, agent in result["agents"].items():
        assert agent["usage"]["input_tokens"] > 0, task_id
        assert agent["usage"]["output_tokens"] > 0, task_id
        assert agent["cost_usd"] is not None, task_id
        assert agent["cost_usd"] > 0, task_id
    assert result["totals"]["cost_complete"] is True
    stats = llm_connections.stats()
    assert stats["by_path"].get("/v1/chat/completions", 0) > 0
    assert stats["by_path"].get("/v1/messages", 0) > 0
    # The tool-using agent made a second round after its tool results.
    assert result["agents"]["HR.payroll_summary"]["rounds"] >= 2
    # Upstream results reached the downstream prompt: the payroll journal saw the payroll summary's text.
    journal_requests = [
        e for e in stats["log"] if "Draft the month-end payroll journal" in (e.get("user_excerpt") or "")
    ]
    assert journal_requests


def test_failing_optional_agent_gives_partial_success_and_dependants_still_run(
    tmp_path, run_dag, llm_connections
):
    workflow, dag = _erp(tmp_path, "erp_e2e_partial", prompt_suffix={"fx_commentary": "[[fail:500]]"})
    run = run_dag(dag)
    states = task_states(run)
    assert states["Finance.fx_commentary"] == "failed"
    assert states["Finance.close_summary"] == "success"
    assert str(run.state) == "success"
    result = xcom_result(run, RESULT_TASK_ID)
    assert result["outcome"] == "partial"
    assert result["agents"]["Finance.fx_commentary"]["status"] == "failed"
    assert _requests_for(llm_connections.stats(), workflow, "Finance.close_summary") >= 1


def test_failing_critical_agent_fails_run_and_dependants_never_reach_the_server(
    tmp_path, run_dag, llm_connections
):
    workflow, dag = _erp(tmp_path, "erp_e2e_critical", prompt_suffix={"payroll_summary": "[[fail:401]]"})
    run = run_dag(dag)
    assert str(run.state) == "failed"
    states = task_states(run)
    assert states["HR.payroll_summary"] == "failed"
    dependants = ["HR.benefits_accruals", "Finance.payroll_journal", "Finance.close_summary"]
    stats = llm_connections.stats()
    for qualified in dependants:
        assert states[qualified] in ("upstream_failed", "skipped"), (qualified, states[qualified])
        assert _requests_for(stats, workflow, qualified) == 0, qualified
    # Independent agents still ran, and the run result says why the run failed.
    assert states["Inventory.stock_valuation"] == "success"
    result = xcom_result(run, RESULT_TASK_ID)
    assert result["outcome"] == "failed"
    assert states[RESULT_TASK_ID] == "failed"
    # the permanent 401 failed the agent at its first attempt: one request, and the reason recorded
    assert _requests_for(stats, workflow, "HR.payroll_summary") == 1
    assert "AuthenticationError" in result["agents"]["HR.payroll_summary"]["reason"]
