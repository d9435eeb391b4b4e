"""Compile (pure): typed records in, the typed workflow result out; one place for reasons and verdicts."""

from __future__ import annotations

import pytest

from airflow_agent_provider.results import (
    AgentMeta,
    AgentRecord,
    AgentResult,
    InstanceRecord,
    RunRecords,
    WorkflowResult,
    compile_result,
    failed_agents,
)
from airflow_agent_provider.results.compile import REASONS, reason_for
from airflow_agent_provider.results.format import format_heading, format_table, to_json
from airflow_agent_provider.results.summary import RunAgentSummary, summarize


def _ok(tokens: int = 10, cost: float | None = 0.001, **extra) -> AgentResult:
    return AgentResult(
        status="success",
        text="t",
        provider="openai",
        model="gpt-5-mini",
        usage={"input_tokens": tokens, "output_tokens": 2},
        cost_usd=cost,
        cost_known=cost is not None,
        rounds=1,
        latency_s=0.25,
        **extra,
    )


def _meta(module: str, agent: str, critical: bool = True, **kw) -> AgentMeta:
    return AgentMeta(module=module, agent=agent, critical=critical, **kw)


def _run(agents: dict[str, AgentRecord], partial: bool = True, **kw) -> WorkflowResult:
    return compile_result(
        RunRecords(
            workflow="w", dag_id="d", run_id="r", agents=agents, allow_partial_completion=partial, **kw
        )
    )


@pytest.mark.parametrize(
    ("state", "result", "gate", "reason"),
    [
        ("success", _ok(), None, None),
        ("failed", AgentResult.failed("ValueError: bad"), None, "ValueError: bad"),
        ("failed", None, None, REASONS["failed"]),
        ("skipped", AgentResult(skip_reason="AirflowSkipException: cond"), None, "cond"),
        (
            "skipped",
            None,
            "M.budget_gate",
            "held back: budget gate M.budget_gate was closed (spend limit reached)",
        ),
        ("upstream_failed", None, None, REASONS["upstream_failed"]),
        (None, None, None, "did not run"),
        ("up_for_retry", None, None, "ended as up_for_retry"),
    ],
)
def test_one_reason_for_every_state(state, result, gate, reason):
    assert reason_for(state, result, gate) == reason


def test_the_run_fails_on_exactly_the_agents_that_had_to_succeed():
    agents = {
        "A.crit": AgentRecord(_meta("A", "crit"), "failed", AgentResult.failed("boom")),
        "A.opt": AgentRecord(_meta("A", "opt", critical=False), "failed"),
        "B.ok": AgentRecord(_meta("B", "ok"), "success", _ok(cost=None), duration_s=1.5),
    }
    result = _run(agents)
    assert result.outcome == "failed"
    assert failed_agents(result) == ["A.crit"]
    assert failed_agents(_run(agents, partial=False)) == ["A.crit", "A.opt"]
    assert result.agents["B.ok"].duration_s == 1.5
    assert result.agents["B.ok"].output == "t"
    assert result.totals.cost_complete is False  # B.ok succeeded at an unknown price: not a silent zero
    assert result.modules["A"].agents == 2
    assert result.modules["B"].succeeded == 1


def test_gates_hold_back_dependants_and_make_the_run_partial():
    agents = {
        "C.d": AgentRecord(_meta("C", "d"), "skipped"),
        "C.e": AgentRecord(_meta("C", "e"), "skipped"),
    }
    kw = {"gates": {"C.budget_gate": ["C.d"]}, "gate_states": {"C.budget_gate": "skipped"}}
    result = _run(agents, upstream={"C.e": ["C.d"]}, **kw)
    assert result.outcome == "partial"
    assert [a.gated for a in result.agents.values()] == [True, True]
    assert result.gates == {"C.budget_gate": "skipped"}
    assert failed_agents(_run(agents, partial=False, upstream={"C.e": ["C.d"]}, **kw)) == ["C.d", "C.e"]


def test_mapped_items_are_summed_and_skips_explained_through_upstreams():
    per = _meta("I", "per", critical=False, mapped=True, items=["A", "B", "C"])
    agents = {
        "I.per": AgentRecord(
            per,
            None,
            instances=[
                InstanceRecord(1, "skipped", 0.1, AgentResult(status="skipped", skip_reason="no", item="B")),
                InstanceRecord(0, "success", 1.0, _ok(output={"n": 1}, item="A")),
                InstanceRecord(2, "failed", None, AgentResult.failed("OutputValidationError: x")),
            ],
        ),
        "I.none": AgentRecord(
            _meta("I", "none", mapped=True, items_task="I.none__items"),
            "skipped",
            AgentResult(status="skipped", skip_reason="for_each 'x' gave an empty list"),
        ),
        "I.after": AgentRecord(_meta("I", "after"), "skipped"),
    }
    result = _run(agents, upstream={"I.after": ["I.none"]})
    entry = result.agents["I.per"]
    assert (entry.status, entry.mapped, entry.rounds, entry.cost_usd) == ("failed", True, 1, 0.001)
    assert [(i.map_index, i.item, i.status, i.reason) for i in entry.items or []] == [
        (0, "A", "success", None),
        (1, "B", "skipped", "no"),
        (2, "C", "failed", "OutputValidationError: x"),
    ]
    assert entry.output == [{"n": 1}, None, None]
    assert entry.duration_s is None  # one item has no recorded run time
    assert entry.reason == REASONS["failed"]
    assert result.agents["I.none"].items == []
    assert result.agents["I.after"].reason == (
        "not run: upstream I.none was skipped (for_each 'x' gave an empty list)"
    )
    assert result.outcome == "partial"


def test_the_xcom_form_reads_back_as_the_same_result_and_formats():
    result = _run(
        {
            "A.a": AgentRecord(_meta("A", "a"), "success", _ok()),
            "A.b": AgentRecord(_meta("A", "b", False), "failed"),
        }
    )
    stored = result.to_dict()
    again = WorkflowResult.from_xcom(stored)
    assert again == result
    assert WorkflowResult.from_xcom(to_json(result)) == result
    table = format_table(result)
    assert table.splitlines()[0].split() == ["agent", "status", "model", "in", "out", "cost_usd"]
    assert "A.b (optional)" in table
    assert table.splitlines()[-1].split()[:2] == ["TOTAL", "partial"]
    assert format_heading(result, "success") == "d  run r  state success  outcome partial"
    with pytest.raises(ValueError, match="version 2"):
        WorkflowResult.from_xcom({**stored, "version": 2})


def test_the_run_record_summary_keeps_the_bill_and_who_answered():
    own = _ok(
        answered_by="anthropic/claude-sonnet-4-5",
        fallbacks_used=[
            {"round": 1, "target": "anthropic/claude-sonnet-4-5"},
            {"round": 2, "target": "anthropic/claude-sonnet-4-5"},
        ],
    )
    result = _run(
        {"A.a": AgentRecord(_meta("A", "a"), "success", own), "A.b": AgentRecord(_meta("A", "b"), "failed")}
    )
    agents = summarize(result, {"A.a": own})
    assert agents["A.a"]["answered_by"] == "anthropic/claude-sonnet-4-5"
    assert agents["A.a"]["fallbacks_used"] == ["anthropic/claude-sonnet-4-5"]
    assert "output" not in agents["A.a"]
    assert agents["A.b"]["answered_by"] is None
    assert RunAgentSummary.from_record(agents["A.b"]).name == "A.b"
    assert RunAgentSummary.from_record({"module": "A"}).status is None  # older, partial records read too
