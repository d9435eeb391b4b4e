"""Structure of generated DAGs: ids, groups, edges, trigger rules, retries, priorities, timeouts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from airflow_agent_provider.definitions import load_workflow, parse_workflow
from airflow_agent_provider.factory import build_dag
from airflow_agent_provider.factory.builder import GATE_TASK_ID
from airflow_agent_provider.factory.trigger_rules import gate_for
from airflow_agent_provider.operators.agent import LLMAgentOperator
from airflow_agent_provider.operators.result import RESULT_TASK_ID


def _rule(task) -> str:
    """Trigger rules are str enums of two different classes (SDK and core): compare by value."""
    return getattr(task.trigger_rule, "value", task.trigger_rule)


EXAMPLES = Path(__file__).parents[2] / "dags" / "workflows"


@pytest.fixture(scope="module")
def erp():
    workflow = load_workflow(EXAMPLES / "erp_month_end.yaml")
    return workflow, build_dag(workflow)


def test_one_task_per_agent_in_module_groups(erp):
    workflow, dag = erp
    agent_ids = {workflow.agent_id(m, a.name) for m, a in workflow.iter_agents()}
    assert len(agent_ids) >= 11
    # the example's workflow-level budget gate stands in front of every module
    assert set(dag.task_ids) == agent_ids | {RESULT_TASK_ID, GATE_TASK_ID}
    assert set(dag.task_group.children) == set(workflow.modules) | {RESULT_TASK_ID, GATE_TASK_ID}
    for module in workflow.modules:
        group = dag.task_group.children[module]
        assert {t.split(".", 1)[1] for t in group.children} == {
            a.name for a in workflow.modules[module].agents
        }
    for task_id in agent_ids:
        assert isinstance(dag.get_task(task_id), LLMAgentOperator)


def test_dependencies_become_edges_and_result_is_the_only_leaf(erp):
    workflow, dag = erp
    for module, agent in workflow.iter_agents():
        qid = workflow.agent_id(module, agent.name)
        assert dag.get_task(qid).upstream_task_ids - {GATE_TASK_ID} == set(workflow.upstream_ids(qid))
    assert dag.get_task("Finance.payroll_journal").upstream_task_ids == {
        "HR.payroll_summary",
        "HR.benefits_accruals",
    }
    result = dag.get_task(RESULT_TASK_ID)
    assert result.upstream_task_ids == set(dag.task_ids) - {RESULT_TASK_ID, GATE_TASK_ID}
    assert set(result.gates) == {GATE_TASK_ID}  # a gate is read by id, not waited for as an upstream
    assert [t.task_id for t in dag.leaves] == [RESULT_TASK_ID]
    assert _rule(result) == "all_done"


def test_partial_completion_trigger_rules(erp):
    workflow, dag = erp
    assert workflow.allow_partial_completion
    # close_summary depends on the optional fx_commentary: it must run even if that one fails,
    # but check its critical upstreams itself.
    close = dag.get_task("Finance.close_summary")
    assert _rule(close) == "all_done"
    assert set(close.critical_upstreams) == {"Finance.payroll_journal", "Finance.ap_invoice_review"}
    journal = dag.get_task("Finance.payroll_journal")
    assert _rule(journal) == "all_success"
    assert journal.critical_upstreams == []


def test_retries_priority_timeouts_and_dag_settings(erp):
    workflow, dag = erp
    task = dag.get_task("HR.payroll_summary")
    assert task.retries == 2
    assert task.retry_delay == timedelta(seconds=30)
    assert task.retry_exponential_backoff == 2.0
    assert task.max_retry_delay == timedelta(minutes=10)
    assert task.priority_weight == 5
    assert (
        getattr(task.weight_rule, "value", task.weight_rule) == "absolute"
        or "absolute" in repr(task.weight_rule).lower()
    )
    assert task.execution_timeout == timedelta(minutes=10)
    assert task.tools == {"lookup_employee": "airflow_agent_provider.examples.erp_tools.lookup_employee"}
    assert dag.dagrun_timeout == timedelta(hours=2)
    assert dag.max_active_tasks == 4
    assert dag.owner == "erp-platform"
    assert "erp" in dag.tags
    assert "llm-agents" in dag.tags
    assert dag.dag_id == "erp_month_end"
    # Upstream results reachable by plain name (same module) and qualified id.
    accruals = dag.get_task("HR.benefits_accruals")
    assert accruals.upstream_tasks == {
        "payroll_summary": "HR.payroll_summary",
        "HR.payroll_summary": "HR.payroll_summary",
    }
    providers = {t.provider for t in dag.tasks if isinstance(t, LLMAgentOperator)}
    assert providers == {"openai", "anthropic"}


def test_without_partial_completion_every_agent_needs_all_upstreams(tmp_path):
    data = yaml.safe_load((EXAMPLES / "erp_month_end.yaml").read_text())
    data["allow_partial_completion"] = False
    workflow = parse_workflow(yaml.safe_dump(data), tmp_path / "strict.yaml")
    dag = build_dag(workflow)
    for task in dag.tasks:
        if isinstance(task, LLMAgentOperator):
            assert _rule(task) == "all_success"
            assert task.critical_upstreams == []


def test_an_agent_without_retries_carries_no_retry_pacing(tmp_path):
    """Nothing to pace: the task keeps Airflow's defaults, which its serialized form leaves out."""
    from airflow.serialization.serialized_objects import DagSerialization

    data = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    data.setdefault("defaults", {})["retries"] = {"attempts": 0, "base_delay": "5s", "max_delay": "7s"}
    dag = build_dag(parse_workflow(yaml.safe_dump(data), tmp_path / "q.yaml"))
    agents = [t for t in dag.tasks if isinstance(t, LLMAgentOperator)]
    assert agents
    for task in agents:
        assert task.retries == 0
        assert task.retry_delay == timedelta(seconds=300)  # Airflow's default, not the 5 s never used
        assert task.max_retry_delay is None
        assert not task.retry_exponential_backoff
        assert task.retry_policy is not None  # a permanent error still fails with its reason
    tasks = DagSerialization.to_dict(dag)["dag"]["tasks"]
    for task in tasks:
        fields = task["__var"]
        if fields["task_type"] == "LLMAgentOperator":
            assert not {"retry_exponential_backoff", "max_retry_delay"} & set(fields)
            assert fields["retry_delay"] == 300.0  # Airflow writes this one always, as for any task


def test_exponential_off_maps_to_plain_retry_delay(tmp_path):
    data = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    data.setdefault("defaults", {})["retries"] = {
        "attempts": 1,
        "base_delay": "5s",
        "max_delay": "5s",
        "exponential": False,
    }
    workflow = parse_workflow(yaml.safe_dump(data), tmp_path / "q.yaml")
    dag = build_dag(workflow)
    task = next(t for t in dag.tasks if t.task_id != RESULT_TASK_ID)
    assert task.retries == 1
    assert task.retry_exponential_backoff == 0
    assert task.retry_delay == timedelta(seconds=5)


@pytest.mark.parametrize(
    ("upstreams", "critical", "partial", "rule", "checked"),
    [
        ([], {}, True, "all_success", ()),
        (["A.a"], {"A.a": True}, True, "all_success", ()),
        (["A.a", "A.b"], {"A.a": True, "A.b": False}, True, "all_done", ("A.a",)),
        (["A.a", "A.b"], {"A.a": True, "A.b": False}, False, "all_success", ()),
        (["A.b"], {"A.b": False}, True, "all_done", ()),
    ],
)
def test_gate_for(upstreams, critical, partial, rule, checked):
    gate = gate_for(upstreams, critical, partial)
    assert gate.trigger_rule == rule
    assert gate.critical_upstreams == checked
