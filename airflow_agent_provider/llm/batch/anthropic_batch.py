"""
Anthropic Message Batches through the official SDK: ``messages.batches.create``, ``retrieve``,
``results`` (the SDK's JSONL decoder) and ``cancel``.

As for OpenAI, parsing is pure and shared by the sync and async calls; succeeded results are parsed
by the real-time adapter. An errored result carries no HTTP status, only an error type; it is
mapped to the status code the real-time API uses for that type, so retry decisions are the same
for both delivery modes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.llm import anthropic_adapter
from airflow_agent_provider.llm.adapter_common import as_plain, get
from airflow_agent_provider.llm.batch.lines import anthropic_request
from airflow_agent_provider.llm.batch.types import BatchHandle, BatchItem, BatchStatus, RequestOutcome

if TYPE_CHECKING:
    from anthropic import Anthropic, AsyncAnthropic

PROVIDER = "anthropic"

#: Error type -> the status code of the real-time API for it.
ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def _handle(raw_batch: Any, items: list[BatchItem]) -> BatchHandle:
    return BatchHandle(
        provider=PROVIDER,
        batch_id=str(get(raw_batch, "id")),
        model=items[0].request.model,
        custom_ids=tuple(item.custom_id for item in items),
        submitted_at=time.time(),
    )


def parse_status(raw_batch: Any) -> BatchStatus:
    """A ``MessageBatch`` (SDK model or dict) as a :class:`BatchStatus`."""
    data = as_plain(raw_batch)
    provider_status = str(get(data, "processing_status", ""))
    counts = get(data, "request_counts", {})
    processing = int(get(counts, "processing", 0))
    succeeded, errored = int(get(counts, "succeeded", 0)), int(get(counts, "errored", 0))
    expired, cancelled = int(get(counts, "expired", 0)), int(get(counts, "canceled", 0))
    return BatchStatus(
        provider=PROVIDER,
        batch_id=str(get(data, "id")),
        state="ended" if provider_status == "ended" else "in_progress",
        provider_status=provider_status,
        total=processing + succeeded + errored + expired + cancelled,
        succeeded=succeeded,
        errored=errored,
        expired=expired,
        cancelled=cancelled,
        processing=processing,
    )


def parse_entry(entry: Any) -> RequestOutcome:
    """One ``MessageBatchIndividualResponse`` (SDK model or dict)."""
    data = as_plain(entry)
    custom_id = str(get(data, "custom_id", ""))
    result = get(data, "result", {})
    kind = get(result, "type")
    if kind == "succeeded":
        message = get(result, "message", {})
        return RequestOutcome(
            custom_id, "succeeded", response=anthropic_adapter.parse(message), status_code=200
        )
    if kind == "canceled":
        return RequestOutcome(custom_id, "cancelled", error="the batch was cancelled before this request ran")
    if kind == "expired":
        return RequestOutcome(custom_id, "expired", error="the batch expired before this request ran")
    inner = get(get(result, "error", {}), "error", {})
    error_type = str(get(inner, "type", "api_error"))
    return RequestOutcome(
        custom_id,
        "errored",
        error=str(get(inner, "message", error_type)),
        status_code=ERROR_STATUS.get(error_type, 500),
        error_type=error_type,
    )


def parse_entries(entries: Iterable[Any]) -> dict[str, RequestOutcome]:
    outcomes: dict[str, RequestOutcome] = {}
    for entry in entries:
        outcome = parse_entry(entry)
        outcomes[outcome.custom_id] = outcome
    return outcomes


def _requests(items: list[BatchItem]) -> list[Any]:
    """The ``requests`` of the create call: plain dicts of the SDK's ``Request`` shape."""
    return [anthropic_request(item) for item in items]


# -- sync (worker) --------------------------------------------------------------------------------


def submit(client: Anthropic, items: list[BatchItem]) -> BatchHandle:
    """
    Create the batch, once, without the SDK's retries (a retried create could start a second paid
    batch; Message Batches carry no metadata to find the first by, so the caller keeps the handle).
    """
    created = client.with_options(max_retries=0).messages.batches.create(requests=_requests(items))
    return _handle(created, items)


def retrieve(client: Anthropic, batch_id: str) -> BatchStatus:
    return parse_status(client.messages.batches.retrieve(batch_id))


def cancel(client: Anthropic, batch_id: str) -> BatchStatus:
    return parse_status(client.messages.batches.cancel(batch_id))


def download(client: Anthropic, status: BatchStatus) -> dict[str, RequestOutcome]:
    """The outcomes of an ended batch, streamed from its ``results_url``."""
    return parse_entries(client.messages.batches.results(status.batch_id))


# -- async (triggerer) ----------------------------------------------------------------------------


async def asubmit(client: AsyncAnthropic, items: list[BatchItem]) -> BatchHandle:
    created = await client.with_options(max_retries=0).messages.batches.create(requests=_requests(items))
    return _handle(created, items)


async def aretrieve(client: AsyncAnthropic, batch_id: str) -> BatchStatus:
    return parse_status(await client.messages.batches.retrieve(batch_id))


async def acancel(client: AsyncAnthropic, batch_id: str) -> BatchStatus:
    return parse_status(await client.messages.batches.cancel(batch_id))


async def adownload(client: AsyncAnthropic, status: BatchStatus) -> dict[str, RequestOutcome]:
    decoder = await client.messages.batches.results(status.batch_id)
    return parse_entries([entry async for entry in decoder])
