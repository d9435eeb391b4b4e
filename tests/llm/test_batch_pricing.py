"""Batch prices: genai-prices' batch rate where it has one, else the documented factor."""

from __future__ import annotations

import pytest

from airflow_agent_provider.cost.batch_pricing import (
    BATCH_PRICE_FACTOR,
    batch_price,
    has_batch_rate,
    max_batch_call_cost,
)
from airflow_agent_provider.cost.pricing import PriceOverride, max_call_cost, price_call
from airflow_agent_provider.llm.types import Usage

USAGE = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_input_tokens=0)


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "gpt-5-mini"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-6")],
)
def test_catalogue_batch_rate_is_half_for_current_models(provider, model):
    assert has_batch_rate(provider, model)
    cost = batch_price(provider, model, USAGE)
    assert cost.basis == "batch-rate"
    assert cost.source == "genai-prices"
    realtime = price_call(provider, model, USAGE).usd
    assert cost.usd == pytest.approx(realtime * 0.5)


def test_catalogue_batch_rate_is_used_as_given_not_recomputed():
    # genai-prices keeps gpt-4o-mini's batch cache-read rate at the standard rate: not a flat half.
    usage = Usage(input_tokens=1_000_000, output_tokens=0, cached_input_tokens=1_000_000)
    cost = batch_price("openai", "gpt-4o-mini", usage)
    assert cost.basis == "batch-rate"
    assert cost.usd != pytest.approx(price_call("openai", "gpt-4o-mini", usage).usd * 0.5)


def test_factor_where_the_catalogue_has_no_batch_rate():
    assert BATCH_PRICE_FACTOR == 0.5
    assert not has_batch_rate("anthropic", "claude-3-haiku-20240307")
    cost = batch_price("anthropic", "claude-3-haiku-20240307", USAGE)
    assert cost.basis == "factor"
    assert cost.source == "genai-prices"
    assert cost.usd == pytest.approx(price_call("anthropic", "claude-3-haiku-20240307", USAGE).usd * 0.5)


def test_override_is_a_realtime_price_scaled_by_the_factor():
    override = PriceOverride(input_per_mtok=1.0, output_per_mtok=4.0)
    cost = batch_price("openai", "gpt-5-mini", USAGE, override)
    assert (cost.usd, cost.source, cost.basis) == (2.5, "override", "factor")
    assert batch_price("openai", "gpt-5-mini", USAGE, override, factor=0.6).usd == pytest.approx(3.0)
    with pytest.raises(ValueError, match="factor"):
        batch_price("openai", "gpt-5-mini", USAGE, override, factor=1.5)


def test_unknown_price_stays_unknown():
    cost = batch_price("openai", "in-house-finetune", USAGE)
    assert cost.usd is None
    assert not cost.known
    assert cost.basis is None
    assert "price override" in (cost.warning or "")
    assert max_batch_call_cost("openai", "in-house-finetune", 100, 100) is None


def test_max_batch_call_cost_is_the_reservation_at_batch_price():
    batch_max = max_batch_call_cost("anthropic", "claude-haiku-4-5", 2000, 1000)
    realtime_max = max_call_cost("anthropic", "claude-haiku-4-5", 2000, 1000)
    assert batch_max == pytest.approx(realtime_max * 0.5)
