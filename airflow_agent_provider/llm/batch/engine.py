"""
Batch delivery for either provider: plan, submit, poll, cancel and collect results.

The caller (a worker submitting, a trigger polling) holds an SDK client for the provider and a
:class:`BatchHandle`; every call here dispatches on the handle's provider to the module that speaks
that API. :func:`complete_results` gives every ``custom_id`` of the handle an outcome, so a request
the provider's result files leave out (a batch that failed validation, an expiry) is never lost:
it is ``errored`` with the batch's error, or ``expired`` / ``cancelled`` as the batch ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from airflow_agent_provider.exceptions import BatchNotEndedError
from airflow_agent_provider.llm.batch import anthropic_batch, openai_batch
from airflow_agent_provider.llm.batch.types import BatchHandle, BatchResults, BatchStatus, RequestOutcome

if TYPE_CHECKING:
    from anthropic import Anthropic, AsyncAnthropic
    from openai import AsyncOpenAI, OpenAI

    from airflow_agent_provider.llm.batch.split import PlannedBatch

    SyncClient = OpenAI | Anthropic
    AsyncClient = AsyncOpenAI | AsyncAnthropic

#: First wait between polls, growth factor and ceiling: a batch takes minutes to hours, so polling
#: starts at 30 s and backs off to 10 min, which keeps API calls per batch in the low hundreds at
#: most over the providers' 24 h window.
POLL_FIRST_SECONDS = 30.0
POLL_FACTOR = 1.5
POLL_MAX_SECONDS = 600.0


def _check(provider: str) -> str:
    if provider not in ("openai", "anthropic"):
        raise ValueError(f"no batch API known for provider {provider!r}")
    return provider


def poll_delay(attempt: int, first: float = POLL_FIRST_SECONDS, cap: float = POLL_MAX_SECONDS) -> float:
    """Seconds to wait before poll number ``attempt`` (0-based): ``first * 1.5**attempt``, capped."""
    return float(min(cap, first * POLL_FACTOR ** max(attempt, 0)))


def complete_results(
    handle: BatchHandle, status: BatchStatus, outcomes: dict[str, RequestOutcome]
) -> BatchResults:
    """An outcome for every request of ``handle``: the provider's, or one implied by how it ended."""
    complete: dict[str, RequestOutcome] = {}
    for custom_id in handle.custom_ids:
        found = outcomes.get(custom_id)
        if found is not None:
            complete[custom_id] = found
        elif status.provider_status == "expired":
            complete[custom_id] = RequestOutcome(custom_id, "expired", error="the batch expired")
        elif status.provider_status in ("cancelled", "canceled"):
            complete[custom_id] = RequestOutcome(custom_id, "cancelled", error="the batch was cancelled")
        else:
            reason = status.error or "the request is missing from the batch results"
            complete[custom_id] = RequestOutcome(
                custom_id, "errored", error=reason, error_type="batch_" + status.provider_status
            )
    return BatchResults(status=status, outcomes=complete)


def _ended(status: BatchStatus) -> BatchStatus:
    if not status.ended:
        raise BatchNotEndedError(
            f"batch {status.batch_id} is still {status.provider_status}; poll until it has ended"
        )
    return status


# -- sync (worker) --------------------------------------------------------------------------------


def submit_batch(
    client: SyncClient,
    batch: PlannedBatch,
    metadata: dict[str, str] | None = None,
    submission_key: str | None = None,
) -> BatchHandle:
    """
    Submit one planned batch (see :func:`~airflow_agent_provider.llm.batch.split.plan_batches`).

    The create call is never retried by the SDK (that could pay for a batch twice). OpenAI batches
    carry ``metadata`` and the ``submission_key``, by which :func:`find_submitted` finds a batch
    whose create raised after it arrived; Anthropic's take neither (both are ignored there).
    """
    items = list(batch.items)
    if _check(batch.provider) == "openai":
        return openai_batch.submit(cast("OpenAI", client), items, metadata, submission_key)
    return anthropic_batch.submit(cast("Anthropic", client), items)


def find_submitted(client: SyncClient, batch: PlannedBatch, submission_key: str) -> BatchHandle | None:
    """
    The batch already created for ``batch`` under ``submission_key`` (OpenAI), else None.

    Always None for Anthropic, whose batches carry no metadata: there the handle returned by
    :func:`submit_batch` must be stored before anything else can fail.
    """
    if _check(batch.provider) == "openai":
        return openai_batch.find(cast("OpenAI", client), list(batch.items), submission_key)
    return None


def retrieve_batch(client: SyncClient, handle: BatchHandle) -> BatchStatus:
    if _check(handle.provider) == "openai":
        return openai_batch.retrieve(cast("OpenAI", client), handle.batch_id)
    return anthropic_batch.retrieve(cast("Anthropic", client), handle.batch_id)


def cancel_batch(client: SyncClient, handle: BatchHandle) -> BatchStatus:
    """Ask the provider to cancel; requests it has not run end ``cancelled``."""
    if _check(handle.provider) == "openai":
        return openai_batch.cancel(cast("OpenAI", client), handle.batch_id)
    return anthropic_batch.cancel(cast("Anthropic", client), handle.batch_id)


def fetch_results(client: SyncClient, handle: BatchHandle, status: BatchStatus | None = None) -> BatchResults:
    """Every request's outcome of an ended batch; ``status`` saves a retrieve when just polled."""
    status = _ended(status or retrieve_batch(client, handle))
    if status.provider_status == "failed":
        return complete_results(handle, status, {})
    if handle.provider == "openai":
        outcomes = openai_batch.download(cast("OpenAI", client), status)
    else:
        outcomes = anthropic_batch.download(cast("Anthropic", client), status)
    return complete_results(handle, status, outcomes)


# -- async (triggerer) ----------------------------------------------------------------------------


async def asubmit_batch(
    client: AsyncClient,
    batch: PlannedBatch,
    metadata: dict[str, str] | None = None,
    submission_key: str | None = None,
) -> BatchHandle:
    items = list(batch.items)
    if _check(batch.provider) == "openai":
        return await openai_batch.asubmit(cast("AsyncOpenAI", client), items, metadata, submission_key)
    return await anthropic_batch.asubmit(cast("AsyncAnthropic", client), items)


async def afind_submitted(
    client: AsyncClient, batch: PlannedBatch, submission_key: str
) -> BatchHandle | None:
    if _check(batch.provider) == "openai":
        return await openai_batch.afind(cast("AsyncOpenAI", client), list(batch.items), submission_key)
    return None


async def aretrieve_batch(client: AsyncClient, handle: BatchHandle) -> BatchStatus:
    if _check(handle.provider) == "openai":
        return await openai_batch.aretrieve(cast("AsyncOpenAI", client), handle.batch_id)
    return await anthropic_batch.aretrieve(cast("AsyncAnthropic", client), handle.batch_id)


async def acancel_batch(client: AsyncClient, handle: BatchHandle) -> BatchStatus:
    if _check(handle.provider) == "openai":
        return await openai_batch.acancel(cast("AsyncOpenAI", client), handle.batch_id)
    return await anthropic_batch.acancel(cast("AsyncAnthropic", client), handle.batch_id)


async def afetch_results(
    client: AsyncClient, handle: BatchHandle, status: BatchStatus | None = None
) -> BatchResults:
    status = _ended(status or await aretrieve_batch(client, handle))
    if status.provider_status == "failed":
        return complete_results(handle, status, {})
    if handle.provider == "openai":
        outcomes = await openai_batch.adownload(cast("AsyncOpenAI", client), status)
    else:
        outcomes = await anthropic_batch.adownload(cast("AsyncAnthropic", client), status)
    return complete_results(handle, status, outcomes)
