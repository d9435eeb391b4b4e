"""``airflow-agents validate`` prints the worst-case cost of a run at real-time and batch prices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_agent_provider.cost.batch_pricing import max_batch_call_cost
from airflow_agent_provider.cost.pricing import max_call_cost
from airflow_agent_provider.cost.worst_case import PER_MESSAGE_OVERHEAD_TOKENS, worst_case
from airflow_agent_provider.definitions import Workflow, load_workflow

PROMPT = "Reconcile account 4711 for the month."
BASE_TOKENS = len(PROMPT.encode()) + 2 * PER_MESSAGE_OVERHEAD_TOKENS


def _workflow(tmp_path: Path, agents: list[dict[str, Any]], **top: Any) -> Workflow:
    path = tmp_path / "wf.yaml"
    data = {"name": "wf", "defaults": {"model": "gpt-5-mini", "max_tokens": 1000}, **top}
    data["modules"] = {"Close": {"agents": agents}}
    path.write_text(yaml.safe_dump(data))
    return load_workflow(path)


def _rt(input_tokens: int, output_tokens: int = 1000) -> float:
    usd = max_call_cost("openai", "gpt-5-mini", input_tokens, output_tokens)
    assert usd is not None
    return usd


def _batch(input_tokens: int, output_tokens: int = 1000) -> float:
    usd = max_batch_call_cost("openai", "gpt-5-mini", input_tokens, output_tokens)
    assert usd is not None
    return usd


def test_a_batch_agent_is_priced_at_the_batch_price_as_declared(tmp_path):
    case = worst_case(
        _workflow(
            tmp_path,
            [{"name": "acct", "prompt": PROMPT, "delivery": "batch"}, {"name": "note", "prompt": PROMPT}],
        )
    )
    assert case.realtime_usd == pytest.approx(2 * _rt(BASE_TOKENS))
    assert case.declared_usd == pytest.approx(_batch(BASE_TOKENS) + _rt(BASE_TOKENS))
    assert case.all_batch_usd == pytest.approx(2 * _batch(BASE_TOKENS))
    assert (case.agents, case.batch_agents, case.realtime_only_agents) == (2, 1, 0)
    assert case.all_batch_usd / case.realtime_usd == pytest.approx(0.5, abs=0.05)


def test_upstream_answers_rounds_and_items_raise_the_bound(tmp_path):
    case = worst_case(
        _workflow(
            tmp_path,
            [
                {"name": "first", "prompt": PROMPT, "max_tokens": 300},
                {"name": "per_sku", "prompt": PROMPT, "for_each": ["A", "B", "C"], "dependencies": ["first"]},
            ],
        )
    )
    # per_sku may read first's whole answer (300 tokens), once for each of its 3 items.
    expected = _rt(BASE_TOKENS, 300) + 3 * _rt(BASE_TOKENS + 300)
    assert case.realtime_usd == pytest.approx(expected)


def test_tool_agents_stay_realtime_and_each_round_resends_the_conversation(tmp_path):
    case = worst_case(
        _workflow(
            tmp_path,
            [{"name": "lookup", "prompt": PROMPT, "tools": ["t"], "max_rounds": 3}],
            tools={"t": "airflow_agent_provider.examples.erp_tools.lookup_employee"},
        )
    )
    rounds = sum(_rt(BASE_TOKENS + n * 1000) for n in range(3))
    assert case.realtime_usd == pytest.approx(rounds)
    assert case.all_batch_usd == pytest.approx(rounds)  # cannot be batched: real-time in every figure
    assert case.realtime_only_agents == 1


def test_dynamic_fan_out_and_unpriced_models_are_reported(tmp_path):
    case = worst_case(
        _workflow(
            tmp_path,
            [
                {"name": "items", "prompt": PROMPT, "for_each": "params.skus"},
                {"name": "odd", "prompt": PROMPT, "model": "no-such-model-xyz"},
            ],
            params={"skus": {"type": "array", "default": ["A"]}},
        )
    )
    assert case.per_item_agents == ["Close.items"]
    assert case.unpriced_agents == ["Close.odd"]
    assert case.realtime_usd == pytest.approx(_rt(BASE_TOKENS))


def test_a_fallback_model_that_costs_more_sets_the_bound(tmp_path):
    agent = {
        "name": "a",
        "prompt": PROMPT,
        "fallbacks": [{"provider": "anthropic", "model": "claude-sonnet-4-6"}],
    }
    case = worst_case(_workflow(tmp_path, [agent]))
    sonnet = max_call_cost("anthropic", "claude-sonnet-4-6", BASE_TOKENS, 1000)
    assert sonnet is not None
    assert sonnet > _rt(BASE_TOKENS)
    assert case.realtime_usd == pytest.approx(sonnet)


def test_validate_prints_the_three_figures(tmp_path):
    _workflow(tmp_path, [{"name": "acct", "prompt": PROMPT, "delivery": "batch"}], cost_budget=2.0)
    proc = subprocess.run(
        [sys.executable, "-m", "airflow_agent_provider.cli.main", "validate", str(tmp_path / "wf.yaml")],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if "worst case per run" in line)
    assert f"realtime {_rt(BASE_TOKENS):.4f}" in line
    assert f"as declared {_batch(BASE_TOKENS):.4f} (1 of 1 agents batch" in line
    assert "batch where possible" in line
    assert "cost_budget caps a run at 2.0000 USD" in proc.stdout
    quiet = subprocess.run(
        [sys.executable, "-m", "airflow_agent_provider.cli.main", "validate", "--no-costs", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert quiet.returncode == 0, quiet.stderr
    assert "worst case" not in quiet.stdout
