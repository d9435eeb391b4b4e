"""
What one model call costs, in US dollars.

Why genai-prices and never a hand-written table: model prices change often and differ per
provider, tier and cache state; a maintained catalogue keeps the provider honest without a release
per price change. A deployment that uses a model the catalogue does not know (an OpenAI-compatible
endpoint, a fine-tune, a brand-new model) gives a ``price:`` override instead.

An unknown price is never a silent zero: ``price_call`` returns ``usd=None`` with a warning naming
the model, and the budget engine refuses to budget such a call (see ``cost/budget.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from airflow_agent_provider.llm.types import Usage

PriceSource = Literal["genai-prices", "override", "unknown"]

_MTOK = 1_000_000
#: Short forms an operator's ``price_override`` mapping may use.
_SHORT_NAMES = {
    "input": "input_per_mtok",
    "output": "output_per_mtok",
    "cached_input": "cached_input_per_mtok",
}


class PriceOverride(BaseModel):
    """
    USD per million tokens, for models genai-prices does not know (or negotiated prices).

    The one class for a price override: the workflow definition's ``price:`` field, the guard
    configuration and the pricing all use it. ``cached_input_per_mtok`` defaults to the input
    price: charging cache reads at the full input price can only over-estimate, which is the safe
    side for a budget.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = Field(None, ge=0)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | PriceOverride) -> PriceOverride:
        """
        Build from an operator's ``price_override`` mapping (an override is returned as it is).

        Accepts the short forms ``input``/``output``/``cached_input`` too; unknown keys are an error
        so that a typo is not silently priced at zero.
        """
        if isinstance(data, PriceOverride):
            return data
        values: dict[str, Any] = {}
        for key, value in data.items():
            name = _SHORT_NAMES.get(key, key)
            if name not in cls.model_fields:
                raise ValueError(
                    f"unknown price override key {key!r}; expected input_per_mtok, output_per_mtok, "
                    "cached_input_per_mtok"
                )
            values[name] = value
        missing = [n for n in ("input_per_mtok", "output_per_mtok") if values.get(n) is None]
        if missing:
            raise ValueError(f"price override needs {' and '.join(missing)}")
        return cls.model_validate(values)

    def price(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
        cached = min(max(cached_input_tokens, 0), input_tokens)
        cached_rate = (
            self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        )
        return (
            (input_tokens - cached) * self.input_per_mtok
            + cached * cached_rate
            + output_tokens * self.output_per_mtok
        ) / _MTOK


@dataclass(frozen=True)
class CallCost:
    """The price of one call; ``usd`` is None when the price is unknown (see ``warning``)."""

    usd: float | None
    source: PriceSource
    warning: str | None = None

    @property
    def known(self) -> bool:
        return self.usd is not None


def unknown_price_warning(provider: str, model: str) -> str:
    """The text shown when a model has no price, saying how to give one."""
    return (
        f"no price known for model {model!r} of provider {provider!r} (not in genai-prices); its cost is "
        f"recorded as unknown, not zero, and it cannot run under a budget. Add a price override to the "
        f"agent or workflow definition, e.g. price: {{input_per_mtok: 0.25, output_per_mtok: 2.0, "
        f"cached_input_per_mtok: 0.025}}"
    )


def _catalogue_price(
    provider: str, model: str, input_tokens: int, output_tokens: int, cached: int
) -> float | None:
    """The genai-prices price, or None when it does not know the provider or model."""
    # Imported here, not at module level: this module is loaded at DAG parse time (every task start).
    from genai_prices import Usage as _GenaiUsage, calc_price

    usage = _GenaiUsage(
        input_tokens=max(input_tokens, 0),
        output_tokens=max(output_tokens, 0),
        # genai-prices counts cache reads inside input_tokens, as the neutral Usage does.
        cache_read_tokens=min(max(cached, 0), max(input_tokens, 0)),
    )
    try:
        result = calc_price(usage, model_ref=model, provider_id=provider)
    except LookupError:
        return None
    return float(result.total_price)


def _price(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached: int,
    override: PriceOverride | None,
) -> CallCost:
    if override is not None:
        return CallCost(override.price(input_tokens, output_tokens, cached), "override")
    usd = _catalogue_price(provider, model, input_tokens, output_tokens, cached)
    if usd is None:
        return CallCost(None, "unknown", unknown_price_warning(provider, model))
    return CallCost(usd, "genai-prices")


def price_call(provider: str, model: str, usage: Usage, override: PriceOverride | None = None) -> CallCost:
    """Price a finished call from its reported usage; an override wins over genai-prices."""
    return _price(
        provider, model, usage.input_tokens, usage.output_tokens, usage.cached_input_tokens, override
    )


def max_call_cost(
    provider: str,
    model: str,
    input_tokens_estimate: int,
    max_tokens: int,
    override: PriceOverride | None = None,
) -> float | None:
    """
    The most a call can cost: the estimated input at the (uncached) input price plus ``max_tokens``
    at the output price. This is what the budget reserves before the call; None when unknown.
    """
    return _price(provider, model, input_tokens_estimate, max_tokens, 0, override).usd


#: The lookup that makes genai-prices load its bundled data (any model it prices).
_CATALOGUE_PROBE = ("openai", "gpt-5-mini")


def warm_prices(models: Sequence[tuple[str, str]] = ()) -> None:
    """
    Import genai-prices and load its price data now (the first lookup reads a bundled data file),
    then look up each ``(provider, model)`` once so that its lookup is cached.

    Blocking: the async path calls :func:`awarm_prices` instead.
    """
    _catalogue_price(*_CATALOGUE_PROBE, 1, 1, 0)
    for provider, model in models:
        _catalogue_price(provider, model, 1, 1, 0)


async def awarm_prices(models: Sequence[tuple[str, str]] = ()) -> None:
    """
    :func:`warm_prices` off the event loop, once per process (later calls return at once).

    Triggers await it (through ``hooks.llm.awarm``) before their first price lookup, so that loading
    the price data never blocks the triggerer's loop; lookups after it are in-memory.
    """
    import asyncio

    from airflow_agent_provider._single_flight import single_flight

    missing = tuple(dict.fromkeys(pair for pair in models if pair not in _warmed))
    if _warmed and not missing:
        return

    async def warm() -> None:
        await asyncio.to_thread(warm_prices, missing)
        _warmed.update(missing)
        _warmed.add(_CATALOGUE_PROBE)

    # A fleet's triggers start together with the same models: one loads the data, the rest await it.
    await single_flight(("prices", missing), warm)


#: ``(provider, model)`` pairs whose price lookup :func:`awarm_prices` has already cached.
_warmed: set[tuple[str, str]] = set()
