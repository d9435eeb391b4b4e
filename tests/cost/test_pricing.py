"""Pricing comes from genai-prices, an override wins, and an unknown model is never priced at zero."""

from __future__ import annotations

import math

import pytest
from genai_prices import Usage as GenaiUsage, calc_price

from airflow_agent_provider.cost.estimate import estimate_input_tokens
from airflow_agent_provider.cost.pricing import (
    CallCost,
    PriceOverride,
    max_call_cost,
    price_call,
)
from airflow_agent_provider.llm.types import Usage


@pytest.mark.parametrize(
    ("provider", "model"), [("openai", "gpt-5-mini"), ("anthropic", "claude-sonnet-4-6")]
)
def test_price_matches_genai_prices(provider, model):
    usage = Usage(input_tokens=12_000, output_tokens=3_000, cached_input_tokens=4_000)
    expected = calc_price(
        GenaiUsage(input_tokens=12_000, output_tokens=3_000, cache_read_tokens=4_000),
        model_ref=model,
        provider_id=provider,
    ).total_price
    cost = price_call(provider, model, usage)
    assert cost.source == "genai-prices"
    assert cost.warning is None
    assert cost.usd == pytest.approx(float(expected))
    # Cached reads are cheaper than fresh input: pricing them as cache reads matters.
    uncached = price_call(provider, model, Usage(12_000, 3_000, 0))
    assert uncached.usd > cost.usd


def test_override_wins_and_prices_cache_reads():
    override = PriceOverride.from_mapping(
        {"input": 1.0, "output_per_mtok": 4.0, "cached_input_per_mtok": 0.1}
    )
    cost = price_call("openai", "gpt-5-mini", Usage(1_000_000, 500_000, 200_000), override)
    assert cost == CallCost(usd=pytest.approx(0.8 + 0.02 + 2.0), source="override")


def test_override_without_cached_price_charges_full_input():
    cost = price_call(
        "openai", "x", Usage(1_000_000, 0, 1_000_000), PriceOverride(input_per_mtok=2.0, output_per_mtok=8.0)
    )
    assert cost.usd == pytest.approx(2.0)


@pytest.mark.parametrize(
    "bad", [{"input": 1.0}, {"input": 1.0, "output": 2.0, "typo": 3.0}, {"input": -1, "output": 1}]
)
def test_override_rejects_bad_mappings(bad):
    with pytest.raises(ValueError, match="(?i)price ?override"):
        PriceOverride.from_mapping(bad)


@pytest.mark.parametrize(
    ("provider", "model"), [("openai", "my-finetune-7b"), ("no-such-provider", "gpt-5-mini")]
)
def test_unknown_model_is_a_warning_not_zero(provider, model):
    cost = price_call(provider, model, Usage(1000, 1000))
    assert cost.usd is None
    assert cost.source == "unknown"
    assert model in cost.warning
    assert "price:" in cost.warning
    assert max_call_cost(provider, model, 100, 100) is None


def test_max_call_cost_is_input_estimate_plus_max_output():
    expected = calc_price(
        GenaiUsage(input_tokens=2_000, output_tokens=1_024), model_ref="gpt-5-mini", provider_id="openai"
    )
    assert max_call_cost("openai", "gpt-5-mini", 2_000, 1_024) == pytest.approx(float(expected.total_price))
    assert max_call_cost(
        "openai", "anything", 1_000_000, 1_000_000, PriceOverride(input_per_mtok=1.0, output_per_mtok=3.0)
    ) == pytest.approx(4.0)
    # The maximum bounds every real cost with at most that many tokens.
    real = price_call("openai", "gpt-5-mini", Usage(2_000, 700, 500)).usd
    assert real <= max_call_cost("openai", "gpt-5-mini", 2_000, 1_024)


@pytest.mark.parametrize("chars", [0, 1, 3, 4, 5, 4001])
def test_estimate_input_tokens_rounds_up(chars):
    assert estimate_input_tokens(chars) == math.ceil(chars / 4)
