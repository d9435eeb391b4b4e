"""The three execution modes in real Airflow runs (dag.test): the same agents give the same results.

``dag.test()`` never starts a task from the trigger (it calls ``execute()``), so a triggerer-only
agent defers from ``execute()`` once and its trigger runs the whole loop inline, which is the same
trigger code the triggerer runs. The mixed DAG has tool agents deferring once per model round, a
tool-less triggerer agent, a tool-less agent that reads upstream results (auto: starts on the worker,
ends in the triggerer) and a mapped tool-less agent; it must give what the all-worker DAG gives.
"""

from __future__ import annotations

import datetime

import pytest
from airflow.sdk import DAG, TaskGroup

from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.hooks.store import get_store
from airflow_agent_provider.operators.agent import LLMAgentOperator
from tests.fixtures.airflow_env import task_states, xcom_result
from tests.llm import sample_tools

pytestmark = pytest.mark.airflow

P = "tests.llm.sample_tools"
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
COMPARED = (
    "status",
    "text",
    "output",
    "provider",
    "model",
    "usage",
    "cost_usd",
    "cost_known",
    "rounds",
    "tool_calls",
    "requests",
    "answered_by",
    "fallbacks_used",
    "finish_reason",
    "stopped",
    "task_id",
    "agent",
    "iterations",
    "item",
    "map_index",
)
TASKS = ("M.lookup", "M.summary", "M.report", "M.per_item[0]", "M.per_item[1]")


def _dag(dag_id: str, modes: dict[str, str]) -> DAG:
    with DAG(dag_id, schedule=None, start_date=START, catchup=False) as dag, TaskGroup("M"):
        lookup = LLMAgentOperator(
            task_id="lookup",
            prompt="MODES-LOOKUP check INV-1",
            execution=modes["tools"],
            tools={"lookup_invoice": f"{P}.lookup_invoice", "add": f"{P}.add"},
            cost_limit=1.0,
        )
        summary = LLMAgentOperator(
            task_id="summary",
            prompt="MODES-SUMMARY [[reply: totals 1.2M]]",
            execution=modes["plain"],
            prompt_context="workflow",
            cost_limit=1.0,
        )
        report = LLMAgentOperator(
            task_id="report",
            execution=modes["reads"],
            prompt_context="workflow",
            cost_limit=1.0,
            upstream_tasks={"lookup": "M.lookup", "summary": "M.summary"},
            prompt="MODES-REPORT {{ results.summary.text }} / {{ results.lookup.rounds }} [[reply: reported]]",
        )
        per_item = LLMAgentOperator.partial(
            task_id="per_item",
            prompt="MODES-ITEM {{ item }} [[reply: item done]]",
            execution=modes["plain"],
            prompt_context="workflow",
        ).expand(item=["DE", "FR"])
        [lookup, summary] >> report >> per_item
    return dag


def _results(dag_run) -> dict[str, dict]:
    out = {}
    for task in TASKS:
        task_id, _, index = task.partition("[")
        value = xcom_result(dag_run, task_id) if not index else None
        if index:
            from airflow.models.xcom import XComModel
            from airflow.utils.session import create_session

            with create_session() as session:
                row = (
                    session.query(XComModel)
                    .filter(
                        XComModel.dag_id == dag_run.dag_id,
                        XComModel.run_id == dag_run.run_id,
                        XComModel.task_id == task_id,
                        XComModel.map_index == int(index[:-1]),
                        XComModel.key == "return_value",
                    )
                    .first()
                )
                value = XComModel.deserialize_value(row)
        out[task] = {k: value.get(k) for k in COMPARED}
    return out


def test_tool_less_triggerer_agent_runs_through_execute(llm_connections, run_dag):
    with DAG("modes_triggerer_alone", schedule=None, start_date=START, catchup=False) as dag:
        LLMAgentOperator(task_id="alone", prompt="ALONE [[reply: from the trigger]]", execution="triggerer")
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"alone": "success"}
    result = xcom_result(dag_run, "alone")
    assert result["text"] == "from the trigger"
    assert result["rounds"] == 1
    assert result["cost_usd"] > 0
    assert llm_connections.stats()["requests"] == 1


def test_a_mixed_workflow_gives_the_results_of_the_worker_path(llm_connections, run_dag):
    sample_tools.CALLS.clear()
    worker_run = run_dag(_dag("modes_worker", {"tools": "worker", "plain": "worker", "reads": "worker"}))
    worker_requests = llm_connections.stats()["requests"]
    worker_tools = list(sample_tools.CALLS)
    llm_connections.reset()
    sample_tools.CALLS.clear()
    mixed_run = run_dag(_dag("modes_mixed", {"tools": "deferred", "plain": "triggerer", "reads": "auto"}))

    assert set(task_states(mixed_run).values()) == set(task_states(worker_run).values()) == {"success"}
    worker, mixed = _results(worker_run), _results(mixed_run)
    assert mixed == worker
    assert worker["M.lookup"]["rounds"] == 2
    assert worker["M.lookup"]["tool_calls"]
    assert worker["M.per_item[1]"]["item"] == "FR"
    assert worker["M.report"]["text"] == "reported"
    assert llm_connections.stats()["requests"] == worker_requests == 6
    assert worker_tools == sample_tools.CALLS  # the tools ran on the worker in both runs
    ledger = Ledger(get_store())
    for run in (worker_run, mixed_run):
        summary = ledger.run_summary(run.dag_id, run.run_id)
        assert summary.total.calls == 6
        assert summary.total.usd == pytest.approx(sum(r["cost_usd"] for r in _results(run).values()))
