"""
The one place where the Airflow side of batch delivery meets the batch engine and batch prices.

Clients come from :class:`~airflow_agent_provider.hooks.llm.LLMHook` (the connection's key, base URL
and options, never the environment; ``max_retries=0``), requests go through the engine's splitting
(per provider limits) and provider modules (``llm.batch``), and every exception that leaves is a
scrubbed copy (an endpoint may echo the key). Sync functions serve the worker (submission), async
ones the triggerer (polling, results, cancel).

Prices come from :mod:`airflow_agent_provider.cost.batch_pricing` (genai-prices' batch rate where it
has one, else the real-time price times its documented factor); ledger entries get ``price_source``
``"<source>+batch"`` as well as ``delivery: batch`` (:func:`delivery_of` reads either).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.cost.batch_pricing import BATCH_PRICE_FACTOR  # re-exported: one factor

if TYPE_CHECKING:
    from airflow_agent_provider.cost.pricing import CallCost, PriceOverride
    from airflow_agent_provider.llm.batch.types import BatchHandle, BatchResults, BatchStatus, OutcomeKind
    from airflow_agent_provider.llm.types import LLMRequest, LLMResponse

#: Suffix of the ``price_source`` of a batch request's ledger entry.
BATCH_SOURCE_SUFFIX = "+batch"


def delivery_of(price_source: str | None) -> str:
    """``batch`` or ``realtime``: how the call of a ledger entry was delivered."""
    return "batch" if (price_source or "").endswith(BATCH_SOURCE_SUFFIX) else "realtime"


# -- prices -----------------------------------------------------------------------------------------


def _override(value: Mapping[str, Any] | PriceOverride | None) -> PriceOverride | None:
    from airflow_agent_provider.cost.pricing import PriceOverride

    if value is None or isinstance(value, PriceOverride):
        return value
    return PriceOverride.from_mapping(value)


def max_cost(request: LLMRequest, override: Mapping[str, Any] | PriceOverride | None = None) -> float | None:
    """The most a batch request can cost (what its reservation holds); None when unpriced."""
    from airflow_agent_provider.cost.batch_pricing import max_batch_call_cost
    from airflow_agent_provider.guard.pipeline import max_input_tokens

    return max_batch_call_cost(
        request.provider, request.model, max_input_tokens(request), request.max_tokens, _override(override)
    )


def price(
    provider: str,
    model: str,
    response: LLMResponse,
    override: Mapping[str, Any] | PriceOverride | None = None,
) -> CallCost:
    """
    What an answered batch request cost, from its usage, at the batch price (genai-prices' batch
    rate where it has one, else the documented factor: ``cost.batch_pricing``). The source carries
    the ``+batch`` suffix, so a ledger reader tells batch charges apart even without ``delivery``.
    """
    from airflow_agent_provider.cost.batch_pricing import batch_price
    from airflow_agent_provider.cost.pricing import CallCost

    cost = batch_price(provider, response.model or model, response.usage, _override(override))
    if not cost.known and response.model and response.model != model:
        cost = batch_price(provider, model, response.usage, _override(override))
    source = f"{cost.source}{BATCH_SOURCE_SUFFIX}"
    return CallCost(cost.usd, source, cost.warning)  # type: ignore[arg-type]  # PriceSource is a Literal of the real-time sources


# -- the engine -------------------------------------------------------------------------------------


def _module(provider: str) -> Any:
    if provider == "openai":
        from airflow_agent_provider.llm.batch import openai_batch

        return openai_batch
    if provider == "anthropic":
        from airflow_agent_provider.llm.batch import anthropic_batch

        return anthropic_batch
    raise ValueError(f"no batch API known for provider {provider!r}")


def _hook(llm_conn_id: str, provider: str) -> Any:
    from airflow_agent_provider.hooks.llm import LLMHook

    return LLMHook(llm_conn_id=llm_conn_id, provider=provider)


def _scrubbed(exc: BaseException, hook: Any) -> BaseException:
    from airflow_agent_provider.security.redact import scrub_exception

    return scrub_exception(exc, hook._secrets())


def submit(llm_conn_id: str, provider: str, requests: Sequence[tuple[str, LLMRequest]]) -> list[BatchHandle]:
    """
    Submit ``(custom_id, request)`` s as few batches as the provider's limits allow (one per model).

    Returns the handles in submission order. Not atomic across batches: the caller keeps each handle
    as soon as it is returned (see ``BatchSubmitOperator``), so a failure half-way loses none.
    """
    return list(iter_submit(llm_conn_id, provider, requests))


def iter_submit(llm_conn_id: str, provider: str, requests: Sequence[tuple[str, LLMRequest]]) -> Any:
    """:func:`submit`, yielding each handle as soon as its batch exists."""
    from airflow_agent_provider.llm.batch.split import plan_batches
    from airflow_agent_provider.llm.batch.types import BatchItem

    hook = _hook(llm_conn_id, provider)
    module = _module(provider)
    plan = plan_batches([BatchItem(custom_id, request) for custom_id, request in requests])
    client = hook.get_conn()
    for planned in plan:
        try:
            handle = module.submit(client, list(planned.items))
        except Exception as exc:
            raise _scrubbed(exc, hook) from None
        yield handle


async def _aclient(llm_conn_id: str, provider: str) -> tuple[Any, Any]:
    hook = _hook(llm_conn_id, provider)
    return hook, await hook.get_async_conn()


async def aretrieve(llm_conn_id: str, handle: Mapping[str, Any]) -> BatchStatus:
    """The batch's status now."""
    provider = str(handle["provider"])
    hook, client = await _aclient(llm_conn_id, provider)
    try:
        status: BatchStatus = await _module(provider).aretrieve(client, str(handle["batch_id"]))
    except Exception as exc:
        raise _scrubbed(exc, hook) from None
    return status


async def aresults(llm_conn_id: str, handle: Mapping[str, Any]) -> BatchResults:
    """Every request's outcome of an ended batch (requests without a result count as expired)."""
    from airflow_agent_provider.llm.batch.types import BatchResults, RequestOutcome

    provider = str(handle["provider"])
    hook, client = await _aclient(llm_conn_id, provider)
    module = _module(provider)
    try:
        status = await module.aretrieve(client, str(handle["batch_id"]))
        outcomes = dict(await module.adownload(client, status))
    except Exception as exc:
        raise _scrubbed(exc, hook) from None
    for custom_id in handle.get("custom_ids") or ():
        if custom_id not in outcomes:
            kind: OutcomeKind = "cancelled" if status.cancelled and not status.expired else "expired"
            outcomes[custom_id] = RequestOutcome(
                custom_id, kind, error=f"no result in batch ({status.provider_status})"
            )
    return BatchResults(status, outcomes)


async def acancel(llm_conn_id: str, handle: Mapping[str, Any]) -> None:
    """Ask the provider to cancel the batch (requests not yet run come back ``cancelled``)."""
    provider = str(handle["provider"])
    hook, client = await _aclient(llm_conn_id, provider)
    try:
        await _module(provider).acancel(client, str(handle["batch_id"]))
    except Exception as exc:
        raise _scrubbed(exc, hook) from None


__all__ = [
    "BATCH_PRICE_FACTOR",
    "BATCH_SOURCE_SUFFIX",
    "acancel",
    "aresults",
    "aretrieve",
    "delivery_of",
    "max_cost",
    "price",
    "submit",
]
