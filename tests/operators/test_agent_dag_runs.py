"""Real Airflow runs (dag.test) of hand-written DAGs using LLMAgentOperator, without the factory."""

from __future__ import annotations

import datetime

import pytest
from airflow.sdk import DAG, TaskGroup

from airflow_agent_provider.operators.agent import LLMAgentOperator
from tests.fixtures.airflow_env import task_states, xcom_result
from tests.llm import sample_tools

pytestmark = pytest.mark.airflow

P = "tests.llm.sample_tools"
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def _requests_for(stats: dict, needle: str) -> int:
    return sum(1 for entry in stats["log"] if needle in entry["user_excerpt"])


def test_hand_written_dag_upstreams_tools_and_skips(llm_connections, run_dag):
    sample_tools.CALLS.clear()
    with DAG("agents_hand_written", schedule=None, start_date=START, catchup=False) as dag:
        with TaskGroup("HR"):
            summary = LLMAgentOperator(
                task_id="payroll_summary", prompt="Summarise payroll [[reply: Payroll totals 1.2M EUR.]]"
            )
            failing = LLMAgentOperator(task_id="broken", prompt="Never works [[fail:400]]", retries=0)
        with TaskGroup("Finance"):
            report = LLMAgentOperator(
                task_id="report",
                provider="anthropic",
                prompt="Reconcile. Same module: {{ results.payroll_summary.text }} | "
                "Cross module: {{ results['HR.payroll_summary'].text }} | broken: {{ results.broken.status }}",
                upstream_tasks={"payroll_summary": "HR.payroll_summary", "broken": "HR.broken"},
                tools={"lookup_invoice": f"{P}.lookup_invoice"},
                trigger_rule="all_done",
                agent_meta={"workflow": "erp", "module": "Finance", "agent": "report", "critical": False},
            )
            close = LLMAgentOperator(
                task_id="close_books",
                prompt="CLOSE-BOOKS {{ results.broken.text }}",
                upstream_tasks={"broken": "HR.broken"},
                critical_upstreams=["HR.broken"],
                trigger_rule="all_done",
            )
            LLMAgentOperator(  # no edges: it runs on its own
                task_id="looper", prompt="LOOPER [[tool-loop:add]]", tools={"add": f"{P}.add"}, max_rounds=2
            )
            LLMAgentOperator(task_id="exploder", prompt="EXPLODER go", tools={"explode": f"{P}.explode"})
            # for_each style: one mapped task instance per prompt, each seeing the upstream results
            per_entity = LLMAgentOperator.partial(
                task_id="per_entity", upstream_tasks={"payroll_summary": "HR.payroll_summary"}
            ).expand(prompt=[f"MAPPED-{e} {{{{ results.payroll_summary.text }}}}" for e in ("DE", "FR")])
        [summary, failing] >> report
        summary >> per_entity
        failing >> close

    dag_run = run_dag(dag)
    states = task_states(dag_run)
    assert states == {
        "HR.payroll_summary": "success",
        "HR.broken": "failed",
        "Finance.report": "success",
        "Finance.close_books": "skipped",
        "Finance.looper": "success",
        "Finance.exploder": "success",
        "Finance.per_entity[0]": "success",
        "Finance.per_entity[1]": "success",
    }
    stats = llm_connections.stats()

    report_result = xcom_result(dag_run, "Finance.report")
    # the upstream text reached the downstream prompt, under both names; the failed one is "unavailable"
    excerpt = next(e["user_excerpt"] for e in stats["log"] if e["user_excerpt"].startswith("Reconcile"))
    assert "Same module: Payroll totals 1.2M EUR." in excerpt
    assert "Cross module: Payroll totals 1.2M EUR." in excerpt
    assert "broken: unavailable" in excerpt
    # tool loop on anthropic: tool call round + answer round
    assert report_result["rounds"] == 2
    assert report_result["provider"] == "anthropic"
    assert report_result["tool_calls"] == [
        {"name": "lookup_invoice", "arguments": {"number": "example"}, "ok": True}
    ]
    assert report_result["usage"]["input_tokens"] > 0
    assert report_result["cost_known"]
    assert report_result["cost_usd"] > 0
    assert report_result["agent"]["module"] == "Finance"
    # missing critical upstream: skipped before any model call
    assert _requests_for(stats, "CLOSE-BOOKS") == 0
    assert xcom_result(dag_run, "Finance.close_books") is None
    # max_rounds bound and a failing tool
    looper_result = xcom_result(dag_run, "Finance.looper")
    assert looper_result["stopped"] == "max_rounds"
    assert looper_result["rounds"] == 2
    assert _requests_for(stats, "LOOPER") == 2
    mapped = sorted(e["user_excerpt"] for e in stats["log"] if e["user_excerpt"].startswith("MAPPED-"))
    assert mapped == ["MAPPED-DE Payroll totals 1.2M EUR.", "MAPPED-FR Payroll totals 1.2M EUR."]
    exploder_result = xcom_result(dag_run, "Finance.exploder")
    assert exploder_result["tool_calls"][0]["ok"] is False
    assert "tool exploded" in exploder_result["text"]


def test_deferrable_tool_loops_through_the_trigger(llm_connections, run_dag):
    with DAG("agents_deferrable", schedule=None, start_date=START, catchup=False) as dag:
        for provider in ("openai", "anthropic"):
            LLMAgentOperator(
                task_id=f"deferred_{provider}",
                provider=provider,
                prompt=f"DEFERRED-{provider} check invoices",
                tools={"lookup_invoice": f"{P}.lookup_invoice", "add": f"{P}.add"},
                deferrable=True,
            )
        LLMAgentOperator(
            task_id="deferred_error", prompt="DEFERRED-ERR [[fail:401]]", deferrable=True, retries=0
        )

    dag_run = run_dag(dag)
    states = task_states(dag_run)
    assert states == {
        "deferred_openai": "success",
        "deferred_anthropic": "success",
        "deferred_error": "failed",
    }
    stats = llm_connections.stats()
    for provider in ("openai", "anthropic"):
        result = xcom_result(dag_run, f"deferred_{provider}")
        assert result["rounds"] == 2
        assert result["provider"] == provider
        assert sorted(c["name"] for c in result["tool_calls"]) == ["add", "lookup_invoice"]
        assert all(c["ok"] for c in result["tool_calls"])
        assert len(result["request_ids"]) == 2
        assert result["cost_known"]
        assert result["usage"]["output_tokens"] > 0
        assert _requests_for(stats, f"DEFERRED-{provider}") == 2
    assert _requests_for(stats, "DEFERRED-ERR") == 1


class FlakyNetworkAgent(LLMAgentOperator):
    """Loses the connection on its second model call of the first try (a worker-side failure)."""

    def _call_model(self, request, context, loop, *args):
        if context["ti"].try_number == 1 and any(m.role == "tool" for m in request.messages):
            raise ConnectionError("network dropped before the second call")
        return super()._call_model(request, context, loop, *args)


def test_retry_resumes_from_task_state_store(llm_connections, run_dag):
    with DAG("agents_retry_resume", schedule=None, start_date=START, catchup=False) as dag:
        FlakyNetworkAgent(
            task_id="resumer",
            prompt="RESUME is INV-9 paid?",
            tools={"lookup_invoice": f"{P}.lookup_invoice"},
            retries=1,
            retry_delay=datetime.timedelta(seconds=0),
        )
    dag_run = run_dag(dag)
    assert task_states(dag_run) == {"resumer": "success"}
    result = xcom_result(dag_run, "resumer")
    assert result["rounds"] == 2
    # try 1 paid for call 1 and died before call 2; try 2 resumed with call 2 only
    assert _requests_for(llm_connections.stats(), "RESUME") == 2
    assert result["usage"]["input_tokens"] > 0
    assert result["cost_usd"] > 0
