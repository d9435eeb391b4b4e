"""The run result compiled by the workflow result task (pure function, no Airflow run needed)."""

from __future__ import annotations

import pytest

from airflow_agent_provider.operators.result import compile_result, decide_outcome, format_table

AGENTS = {
    "HR.a": {"module": "HR", "agent": "a", "critical": True},
    "HR.b": {"module": "HR", "agent": "b", "critical": False},
    "Finance.c": {"module": "Finance", "agent": "c", "critical": True},
}


def _result(tokens_in: int, cost: float | None) -> dict:
    return {
        "status": "success",
        "text": "t",
        "provider": "openai",
        "model": "gpt-5-mini",
        "usage": {"input_tokens": tokens_in, "output_tokens": 10, "cached_input_tokens": 0},
        "cost_usd": cost,
        "cost_known": cost is not None,
        "rounds": 1,
        "latency_s": 0.1,
    }


def _successes(states: dict[str, str], tokens_in: int, cost: float) -> dict:
    """A result for every agent that succeeded, none for the others."""
    return {t: _result(tokens_in, cost) if s == "success" else None for t, s in states.items()}


def _compile(states: dict, results: dict, *, partial: bool, cost_budget: float | None, **extra) -> dict:
    """The workflow result of run ``w``/``r`` of workflow ``w`` (agents ``AGENTS`` unless given)."""
    return compile_result(
        workflow="w",
        dag_id="w",
        run_id="r",
        agents=extra.pop("agents", AGENTS),
        states=states,
        results=results,
        allow_partial_completion=partial,
        cost_budget=cost_budget,
        **extra,
    )


@pytest.mark.parametrize(
    ("states", "partial", "outcome"),
    [
        ({"HR.a": "success", "HR.b": "success", "Finance.c": "success"}, True, "success"),
        ({"HR.a": "success", "HR.b": "failed", "Finance.c": "success"}, True, "partial"),
        ({"HR.a": "success", "HR.b": "failed", "Finance.c": "success"}, False, "failed"),
        ({"HR.a": "failed", "HR.b": "success", "Finance.c": "upstream_failed"}, True, "failed"),
        ({"HR.a": "success", "HR.b": "upstream_failed", "Finance.c": "success"}, True, "partial"),
    ],
)
def test_outcomes(states, partial, outcome):
    res = _compile(states, _successes(states, 100, 0.001), partial=partial, cost_budget=1.0)
    assert res["outcome"] == outcome
    assert decide_outcome(res["agents"], partial) == outcome


def test_totals_modules_and_unknown_cost():
    states = {"HR.a": "success", "HR.b": "failed", "Finance.c": "success"}
    results = {"HR.a": _result(100, 0.002), "HR.b": None, "Finance.c": _result(50, None)}
    res = _compile(states, results, partial=True, cost_budget=None)
    assert res["version"] == 1
    assert res["totals"]["usage"]["input_tokens"] == 150
    assert res["totals"]["cost_usd"] == pytest.approx(0.002)
    assert res["totals"]["cost_complete"] is False  # Finance.c's price is unknown: not a silent zero
    assert res["modules"]["HR"] == {
        "agents": 2,
        "succeeded": 1,
        "usage": {"input_tokens": 100, "output_tokens": 10, "cached_input_tokens": 0},
        "cost_usd": 0.002,
    }
    assert res["agents"]["HR.b"]["status"] == "failed"
    assert "failed" in res["agents"]["HR.b"]["reason"]
    table = format_table(res)
    assert "HR.b (optional)" in table
    assert "unknown" in table
    assert "partial" in table


def test_agents_behind_a_closed_gate_make_the_outcome_partial_not_failed():
    agents = {
        **AGENTS,
        "Compliance.d": {"module": "Compliance", "agent": "d", "critical": True},
        "Compliance.e": {"module": "Compliance", "agent": "e", "critical": True},
    }
    states = {
        "HR.a": "success",
        "HR.b": "success",
        "Finance.c": "success",
        "Compliance.d": "skipped",
        "Compliance.e": "skipped",
        "Compliance.budget_gate": "skipped",
    }
    kwargs = dict(
        agents=agents,
        cost_budget=None,
        gates={"Compliance.budget_gate": ["Compliance.d"]},
        upstream={"Compliance.e": ["Compliance.d"]},
    )
    res = _compile(states, _successes(states, 10, 0.001), partial=True, **kwargs)
    assert res["outcome"] == "partial"
    assert res["agents"]["Compliance.e"]["gated"]
    assert "budget gate" in res["agents"]["Compliance.e"]["reason"]
    assert res["gates"] == {"Compliance.budget_gate": "skipped"}
    assert _compile(states, _successes(states, 10, 0.001), partial=False, **kwargs)["outcome"] == "failed"


def test_skipped_agents_without_a_gate_are_not_failures():
    states = {"HR.a": "success", "HR.b": "skipped", "Finance.c": "success"}
    res = _compile(states, _successes(states, 10, 0.001), partial=False, cost_budget=None)
    assert res["outcome"] == "success"
