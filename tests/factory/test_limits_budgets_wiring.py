"""The factory hands limits, budgets, retries, breaker, fallbacks, pools and gates to the tasks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_agent_provider.cost.budget import BudgetLimits
from airflow_agent_provider.definitions import parse_workflow
from airflow_agent_provider.factory import build_dag
from airflow_agent_provider.factory.builder import GATE_TASK_ID
from airflow_agent_provider.factory.pools import pool_name, pools_for
from airflow_agent_provider.operators.result import RESULT_TASK_ID
from airflow_agent_provider.operators.retry_policy import AgentRetryPolicy
from airflow_agent_provider.resilience.fallback import FallbackTarget
from airflow_agent_provider.resilience.retrying import CallRetryPolicy
from airflow_agent_provider.sensors.budget import CostBudgetSensor

EXAMPLE = Path(__file__).parents[2] / "dags" / "workflows" / "erp_month_end.yaml"


def _workflow(tmp_path, mutate=None):
    data = yaml.safe_load(EXAMPLE.read_text())
    if mutate:
        mutate(data)
    return parse_workflow(yaml.safe_dump(data, sort_keys=False), tmp_path / "wf.yaml")


def test_budgets_limits_retries_breaker_reach_every_agent(tmp_path):
    workflow = _workflow(tmp_path)
    dag = build_dag(workflow)
    journal = dag.get_task("Finance.payroll_journal")
    assert journal.guard.budgets == BudgetLimits(
        module_cost_budget=2.0, run_cost_budget=5.0, daily_budget=20.0, monthly_budget=60.0
    )
    assert journal.budget == {  # the view the run record reads
        "module_cost_budget": 2.0,
        "run_cost_budget": 5.0,
        "daily_budget": 20.0,
        "monthly_budget": 60.0,
    }
    review = dag.get_task("Finance.ap_invoice_review")
    assert review.guard.budgets.agent_cost_limit == 0.5
    assert (review.guard.module, review.guard.agent) == ("Finance", "ap_invoice_review")
    keys = {rule.key for rule in journal.guard.rate_limits}
    assert keys == set(workflow.rate_limits)
    rule = next(r for r in journal.guard.rate_limits if r.key == "openai/gpt-5-mini")
    assert rule.to_dict() == {
        "key": "openai/gpt-5-mini",
        "limits": {"requests_per_minute": 300, "requests_per_day": 20000, "max_concurrent": 4},
        "provider": "openai",
        "model": "gpt-5-mini",
    }
    assert rule.policy.requests_per_minute == 300  # parsed once, when the DAG is built
    # every agent of the workflow shares the same parsed rules
    assert review.guard.rate_limits is journal.guard.rate_limits
    assert isinstance(journal.retry_policy, AgentRetryPolicy)
    assert journal.retry_policy.base_delay_s == 30
    assert journal.retry_policy.max_delay_s == 600
    assert journal.guard.call_retries.max_attempts == 3
    assert journal.guard.breaker is not None
    assert journal.guard.breaker.failure_threshold == 5


def test_derived_pools_follow_the_most_specific_concurrency_limit(tmp_path):
    workflow = _workflow(tmp_path)
    dag = build_dag(workflow)
    assert (
        dag.get_task("HR.payroll_summary").pool == pool_name("openai/gpt-5-mini") == "llm_openai_gpt-5-mini"
    )
    assert dag.get_task("HR.headcount_changes").pool == "llm_anthropic"  # provider-level limit
    assert pools_for([workflow]) == {
        "llm_openai_gpt-5-mini": {
            "slots": 4,
            "description": "LLM calls to openai/gpt-5-mini (airflow-agent-provider)",
            "include_deferred": True,
        },
        "llm_anthropic": {
            "slots": 4,
            "description": "LLM calls to anthropic (airflow-agent-provider)",
            "include_deferred": True,
        },
    }


def test_explicit_pool_wins_and_no_limit_means_default_pool(tmp_path):
    def mutate(data):
        data["rate_limits"] = {"openai": {"requests_per_minute": 10}}
        data["modules"]["HR"]["agents"][0]["pool"] = "hr_pool"

    dag = build_dag(_workflow(tmp_path, mutate))
    assert dag.get_task("HR.payroll_summary").pool == "hr_pool"
    assert dag.get_task("Finance.payroll_journal").pool == "default_pool"


def test_fallbacks_call_retries_timeout_and_disabled_breaker(tmp_path):
    def mutate(data):
        data["circuit_breaker"] = {"enabled": False}
        agent = data["modules"]["Finance"]["agents"][0]
        agent["fallbacks"] = [{"provider": "anthropic", "model": "claude-haiku-4-5"}]
        agent["call_retries"] = {"max_attempts": 5, "base_delay": "2s", "max_delay": "1m"}
        agent["request_timeout"] = "45s"

    dag = build_dag(_workflow(tmp_path, mutate))
    task = dag.get_task("Finance.payroll_journal")
    assert task.guard.fallbacks == (
        FallbackTarget(provider="anthropic", model="claude-haiku-4-5", llm_conn_id="agent_anthropic_default"),
    )
    assert task.guard.call_retries == CallRetryPolicy(
        max_attempts=5, base_delay_s=2.0, max_delay_s=60.0, exponential=True, jitter=True
    )
    assert task.request_timeout == 45.0
    assert task.guard.breaker is None


def test_budget_gates_stand_in_front_of_the_module_and_the_workflow(tmp_path):
    def mutate(data):
        data["budget_gate"] = {"scope": "month", "max_spend": 50}
        data["modules"]["Compliance"]["budget_gate"] = {"scope": "day", "max_spend": 10}

    dag = build_dag(_workflow(tmp_path, mutate))
    module_gate = dag.get_task(f"Compliance.{GATE_TASK_ID}")
    assert isinstance(module_gate, CostBudgetSensor)
    assert module_gate.scope == "workflow_day"
    assert module_gate.max_spend_usd == 10
    assert module_gate.soft_fail
    # sod_review and controls_test only depend on other modules: they are the module's entry agents
    assert module_gate.downstream_task_ids == {"Compliance.sod_review", "Compliance.controls_test"}
    workflow_gate = dag.get_task(GATE_TASK_ID)
    assert workflow_gate.scope == "workflow_month"
    roots = {
        t.task_id for t in dag.tasks if isinstance(t, CostBudgetSensor) is False and not t.upstream_task_ids
    }
    assert roots == set()  # every agent is behind the workflow gate or another agent
    assert "HR.payroll_summary" in workflow_gate.downstream_task_ids
    result = dag.get_task(RESULT_TASK_ID)
    assert set(result.gates) == {GATE_TASK_ID, f"Compliance.{GATE_TASK_ID}"}


@pytest.mark.parametrize("bad", [{"enabled": "perhaps"}, {"failure_threshold": 0}, {"window": "soon"}])
def test_bad_breaker_settings_are_definition_errors(tmp_path, bad):
    from airflow_agent_provider.definitions import WorkflowDefinitionError

    with pytest.raises(WorkflowDefinitionError) as err:
        _workflow(tmp_path, lambda d: d.update(circuit_breaker=bad))
    assert "circuit_breaker" in str(err.value)
    assert "wf.yaml" in str(err.value)
