"""
Batch delivery (OpenAI Batch API, Anthropic Message Batches): half price, results within 24 h.

Airflow-free, like the rest of ``llm``: :func:`plan_batches` splits requests by the providers'
limits, :func:`submit_batch` sends one planned batch through the official SDK, the wait polls
:func:`retrieve_batch` (or the async variants in the triggerer) and :func:`fetch_results` turns the
results into one :class:`RequestOutcome` per ``custom_id``, each succeeded one carrying the same
``LLMResponse`` a real-time call would give.
"""

from __future__ import annotations

from airflow_agent_provider.exceptions import BatchNotEndedError, BatchTooLargeError
from airflow_agent_provider.llm.batch.engine import (
    acancel_batch,
    afetch_results,
    afind_submitted,
    aretrieve_batch,
    asubmit_batch,
    cancel_batch,
    complete_results,
    fetch_results,
    find_submitted,
    poll_delay,
    retrieve_batch,
    submit_batch,
)
from airflow_agent_provider.llm.batch.split import PlannedBatch, plan_batches
from airflow_agent_provider.llm.batch.types import (
    PROVIDER_LIMITS,
    BatchHandle,
    BatchItem,
    BatchLimits,
    BatchResults,
    BatchStatus,
    RequestOutcome,
    provider_limits,
)

__all__ = [
    "PROVIDER_LIMITS",
    "BatchHandle",
    "BatchItem",
    "BatchLimits",
    "BatchNotEndedError",
    "BatchResults",
    "BatchStatus",
    "BatchTooLargeError",
    "PlannedBatch",
    "RequestOutcome",
    "acancel_batch",
    "afetch_results",
    "afind_submitted",
    "aretrieve_batch",
    "asubmit_batch",
    "cancel_batch",
    "complete_results",
    "fetch_results",
    "find_submitted",
    "plan_batches",
    "poll_delay",
    "provider_limits",
    "retrieve_batch",
    "submit_batch",
]
