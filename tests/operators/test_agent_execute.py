"""LLMAgentOperator.execute() with a task context, against the local LLM server (real SDK clients)."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from airflow_agent_provider.operators.agent import LLMAgentOperator
from tests.llm import sample_tools
from tests.operators.agent_support import MemoryStateStore, make_context, run_operator

P = "tests.llm.sample_tools"
RESULT_KEYS = {
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
    "latency_s",
    "request_ids",
    "agent",
}


@pytest.fixture(autouse=True)
def _reset_tool_calls():
    sample_tools.CALLS.clear()
    sample_tools.CRASH_ONCE["armed"] = False


def test_text_agent_result_shape_and_cost(llm_connections):
    store = MemoryStateStore()
    op = LLMAgentOperator(
        task_id="summary",
        prompt="Summarise payroll [[reply: Payroll totals 1.2M.]]",
        system_prompt="You are the HR agent.",
        agent_meta={"workflow": "erp", "module": "HR", "agent": "summary", "critical": True},
        execution="worker",  # the worker path persists the loop after each call
    )
    result = run_operator(op, make_context(store=store))
    assert set(result) >= RESULT_KEYS
    assert result["status"] == "success"
    assert result["text"] == result["output"] == "Payroll totals 1.2M."
    assert (result["provider"], result["model"], result["rounds"]) == ("openai", "gpt-5-mini", 1)
    assert result["usage"]["input_tokens"] > 0
    assert result["usage"]["output_tokens"] > 0
    assert result["cost_known"] is True
    assert result["cost_usd"] > 0
    assert len(result["request_ids"]) == 1
    assert result["latency_s"] > 0
    assert result["agent"]["module"] == "HR"
    assert result["stopped"] is None
    json.dumps(result)  # XCom-safe
    assert store.writes >= 1
    assert store.data == {}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_tool_loop(llm_connections, provider):
    op = LLMAgentOperator(
        task_id="ap_check",
        provider=provider,
        prompt="Check the open invoices.",
        tools={"lookup_invoice": f"{P}.lookup_invoice", "add": f"{P}.add"},
    )
    result = run_operator(op, make_context(store=MemoryStateStore()))
    # the server calls every offered tool once with schema-generated arguments, then answers
    assert result["rounds"] == 2
    assert sorted(c["name"] for c in result["tool_calls"]) == ["add", "lookup_invoice"]
    assert all(c["ok"] for c in result["tool_calls"])
    assert sorted(name for name, _ in sample_tools.CALLS) == ["add", "lookup_invoice"]
    assert "Tool results" in result["text"]
    assert llm_connections.stats()["requests"] == 2
    assert len(result["request_ids"]) == 2


def test_max_rounds_bound(llm_connections, capsys):
    op = LLMAgentOperator(
        task_id="looper",
        provider="anthropic",
        prompt="Loop forever [[tool-loop:add]]",
        tools={"add": f"{P}.add"},
        max_rounds=3,
    )
    result = run_operator(op, make_context())
    assert result["rounds"] == 3
    assert result["stopped"] == "max_rounds"
    assert len(sample_tools.CALLS) == 2  # tools ran between the calls, not after the last one
    assert llm_connections.stats()["requests"] == 3
    assert "stopped after max_rounds=3" in capsys.readouterr().out  # operator logs go through structlog


def test_tool_that_raises_is_reported_to_the_model(llm_connections):
    op = LLMAgentOperator(task_id="exploder", prompt="Do it", tools={"explode": f"{P}.explode"})
    result = run_operator(op, make_context())
    assert result["status"] == "success"
    assert result["rounds"] == 2
    assert result["tool_calls"] == [{"name": "explode", "arguments": {}, "ok": False}]
    assert "tool exploded" in result["text"]  # the server echoes the tool result it got


def test_retry_resumes_without_paying_twice(llm_connections):
    store = MemoryStateStore()
    sample_tools.CRASH_ONCE["armed"] = True
    kwargs = dict(task_id="resumer", prompt="Is INV-1 paid?", tools={"crash_once": f"{P}.crash_once"})
    with pytest.raises(sample_tools.WorkerCrash):
        run_operator(LLMAgentOperator(**kwargs), make_context(store=store))
    saved = store.data["agent_loop"]
    assert saved["rounds"] == 1
    assert saved["usage"]["input_tokens"] > 0
    assert saved["cost_usd"] > 0
    assert llm_connections.stats()["requests"] == 1
    # the retry: a fresh operator object, the same store
    result = run_operator(LLMAgentOperator(**kwargs), make_context(store=store))
    assert result["rounds"] == 2
    assert llm_connections.stats()["requests"] == 2  # the first call was not made again
    assert result["usage"]["input_tokens"] > saved["usage"]["input_tokens"]  # its usage is still counted
    assert "paid" in result["text"]
    assert store.data == {}


def test_changed_prompt_does_not_resume(llm_connections):
    store = MemoryStateStore()
    store.set("agent_loop", {"version": 1, "fingerprint": "other", "rounds": 5})
    result = run_operator(LLMAgentOperator(task_id="t", prompt="[[reply: fresh]]"), make_context(store=store))
    assert result["text"] == "fresh"
    assert result["rounds"] == 1


def test_unknown_price_is_none_not_zero(llm_connections, capsys):
    op = LLMAgentOperator(task_id="local", prompt="[[reply: hi]]", model="my-finetune-7b")
    result = run_operator(op, make_context())
    assert result["cost_usd"] is None
    assert result["cost_known"] is False
    assert "no price known for model 'my-finetune-7b'" in capsys.readouterr().out
    priced = LLMAgentOperator(
        task_id="local2",
        prompt="[[reply: hi]] [[usage: in=1000000 out=0]]",
        model="my-finetune-7b",
        price_override={"input_per_mtok": 2.0, "output_per_mtok": 4.0},
    )
    result = run_operator(priced, make_context())
    assert result["cost_known"] is True
    assert result["cost_usd"] == pytest.approx(2.0)


def test_upstream_results_in_prompt(llm_connections):
    xcoms = {
        "HR.payroll_summary": {"status": "success", "text": "Payroll is 1.2M", "output": "Payroll is 1.2M"},
        "Finance.ledger": "raw python value",
    }
    op = LLMAgentOperator(
        task_id="Finance.report",
        prompt="A: {{ results.payroll_summary.text }} | B: {{ results['HR.payroll_summary'].text }} | "
        "C: {{ results.ledger.text }} | D: [{{ results.missing.text }}] {{ results.missing.status }}",
        system_prompt="Context:\n{{ upstream_text }}",
        upstream_tasks={
            "payroll_summary": "HR.payroll_summary",
            "ledger": "Finance.ledger",
            "missing": "HR.failed_agent",
        },
    )
    result = run_operator(op, make_context(xcoms))
    assert op.prompt == ("A: Payroll is 1.2M | B: Payroll is 1.2M | C: raw python value | D: [] unavailable")
    assert "## payroll_summary\nPayroll is 1.2M" in op.system_prompt
    assert "(unavailable:" in op.system_prompt
    assert "Payroll is 1.2M" in llm_connections.stats()["log"][0]["user_excerpt"]
    assert result["status"] == "success"


def test_missing_critical_upstream_skips_without_a_call(llm_connections):
    op = LLMAgentOperator(
        task_id="close_books",
        prompt="{{ results.ledger.text }}",
        upstream_tasks={"ledger": "Finance.ledger"},
        critical_upstreams=["Finance.ledger"],
    )
    with pytest.raises(AirflowSkipException, match=r"critical upstream task\(s\) \['Finance.ledger'\]"):
        run_operator(op, make_context({}))
    assert llm_connections.stats()["requests"] == 0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_structured_output(llm_connections, provider):
    schema = {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]}
    op = LLMAgentOperator(task_id="structured", provider=provider, prompt="Total?", output_schema=schema)
    result = run_operator(op, make_context())
    assert isinstance(result["output"], dict)
    assert "total" in result["output"]


def test_bad_configuration_fails_at_parse_time():
    with pytest.raises(TypeError, match="dotted paths"):
        LLMAgentOperator(task_id="x", prompt="p", tools={"f": print})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="unknown price override key"):
        LLMAgentOperator(task_id="y", prompt="p", price_override={"inptu": 1})
    with pytest.raises(ValueError, match="max_rounds"):
        LLMAgentOperator(task_id="z", prompt="p", max_rounds=0)
