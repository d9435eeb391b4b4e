"""
What a call costs when it is delivered through a provider's batch API.

Both providers sell batch delivery at half the real-time price: the OpenAI Batch API ("50 % lower
costs", https://platform.openai.com/docs/guides/batch) and Anthropic Message Batches ("50 % of
standard API prices", https://docs.anthropic.com/en/docs/build-with-claude/batch-processing).

genai-prices (0.2 and later) models batch prices as a price variant selected with the price context
``{"processing": "batch"}``; where it has one for the model, that rate is used: it is the
catalogue's own figure and may differ from a flat half (OpenAI keeps some cache-read rates, for
instance). Where it has none (an older model, or a model genai-prices only knows through another
provider's entry), the real-time price times :data:`BATCH_PRICE_FACTOR` is used, and the result says
so in ``basis``. A price override of the workflow is a real-time price, so it is scaled by the
factor too. An unknown price stays unknown, never zero, as for real-time calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from airflow_agent_provider.cost.pricing import PriceOverride, PriceSource, price_call
from airflow_agent_provider.llm.types import Usage

#: The published batch discount of both providers: batch requests cost half the real-time price.
BATCH_PRICE_FACTOR = 0.5

#: The genai-prices price context that selects a batch price variant.
BATCH_PRICE_CONTEXT: dict[str, str] = {"processing": "batch"}

#: ``batch-rate``: genai-prices' own batch price; ``factor``: real-time price x the factor.
BatchBasis = Literal["batch-rate", "factor"]


@dataclass(frozen=True)
class BatchCallCost:
    """The batch price of one call; ``usd`` None when the price is unknown (see ``warning``)."""

    usd: float | None
    source: PriceSource
    basis: BatchBasis | None
    warning: str | None = None

    @property
    def known(self) -> bool:
        return self.usd is not None


def _genai_usage(input_tokens: int, output_tokens: int, cached: int) -> Any:
    from genai_prices import Usage as GenaiUsage

    return GenaiUsage(
        input_tokens=max(input_tokens, 0),
        output_tokens=max(output_tokens, 0),
        # genai-prices counts cache reads inside input_tokens, as the neutral Usage does.
        cache_read_tokens=min(max(cached, 0), max(input_tokens, 0)),
    )


def _catalogue_batch_price(
    provider: str, model: str, input_tokens: int, output_tokens: int, cached: int
) -> float | None:
    """genai-prices' batch price, or None when it has no batch rate for this provider's model."""
    # Imported here, like cost/pricing.py: this module may be loaded at DAG parse time.
    from genai_prices import calc_price

    usage = _genai_usage(input_tokens, output_tokens, cached)
    try:
        result = calc_price(usage, model_ref=model, provider_id=provider, price_context=BATCH_PRICE_CONTEXT)
    except LookupError:
        return None
    now = datetime.now(timezone.utc)
    # genai-prices applies variants only to the provider's own model entries (not to a model found
    # through another provider), and only while the variant's start date has passed.
    own_entry = any(result.model is entry for entry in result.provider.models)
    has_batch_variant = any(
        variant.when.get("processing") == "batch"
        and (variant.constraint is None or variant.constraint.active(now))
        for variant in result.model.price_variants or ()
    )
    return float(result.total_price) if own_entry and has_batch_variant else None


def has_batch_rate(provider: str, model: str) -> bool:
    """Whether genai-prices knows a batch price for ``model`` of ``provider``."""
    return _catalogue_batch_price(provider, model, 1, 1, 0) is not None


def _batch_price(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached: int,
    override: PriceOverride | None,
    factor: float,
) -> BatchCallCost:
    if override is None:
        usd = _catalogue_batch_price(provider, model, input_tokens, output_tokens, cached)
        if usd is not None:
            return BatchCallCost(usd, "genai-prices", "batch-rate")
    realtime = price_call(provider, model, Usage(input_tokens, output_tokens, cached), override)
    if realtime.usd is None:
        return BatchCallCost(None, "unknown", None, realtime.warning)
    return BatchCallCost(realtime.usd * factor, realtime.source, "factor")


def batch_price(
    provider: str,
    model: str,
    usage: Usage,
    override: PriceOverride | None = None,
    factor: float = BATCH_PRICE_FACTOR,
) -> BatchCallCost:
    """Price a finished batch request from its reported usage (an override wins, times ``factor``)."""
    if not 0 <= factor <= 1:
        raise ValueError(f"batch price factor must be between 0 and 1, got {factor}")
    return _batch_price(
        provider, model, usage.input_tokens, usage.output_tokens, usage.cached_input_tokens, override, factor
    )


def max_batch_call_cost(
    provider: str,
    model: str,
    input_tokens_estimate: int,
    max_tokens: int,
    override: PriceOverride | None = None,
    factor: float = BATCH_PRICE_FACTOR,
) -> float | None:
    """
    The most a batch request can cost: the estimated input (uncached) plus ``max_tokens`` output,
    at the batch price. What a budget reserves per request before the batch is submitted.
    """
    if not 0 <= factor <= 1:
        raise ValueError(f"batch price factor must be between 0 and 1, got {factor}")
    return _batch_price(provider, model, input_tokens_estimate, max_tokens, 0, override, factor).usd
