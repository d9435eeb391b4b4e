"""
Splitting requests into batches the providers accept.

Requests are grouped by provider and model first (an OpenAI batch must use one model; grouping
Anthropic the same way keeps "one batch per provider/model" true and makes costs per batch
readable), then cut, in their given order, wherever the next request would exceed the
:class:`BatchLimits`: requests per batch, encoded bytes, and the optional enqueued-token cap.
A single request that alone exceeds the bytes or token limit cannot be sent as a batch at all:
that is an error, not a silent drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from airflow_agent_provider.exceptions import BatchTooLargeError
from airflow_agent_provider.llm.batch.lines import enqueued_tokens, entry_size
from airflow_agent_provider.llm.batch.types import BatchItem, BatchLimits, provider_limits

#: Bytes of the Anthropic create body around its requests (``{"requests": [...]}``), kept in reserve.
_ENVELOPE_BYTES = 64


@dataclass(frozen=True)
class PlannedBatch:
    """One batch to submit: its requests (one provider and model) and their measured size."""

    provider: str
    model: str
    items: tuple[BatchItem, ...]
    bytes: int
    enqueued_tokens: int

    @property
    def custom_ids(self) -> tuple[str, ...]:
        return tuple(item.custom_id for item in self.items)


def check_unique(items: Sequence[BatchItem]) -> None:
    """Refuse duplicate ``custom_id`` s: a result could not be matched to its request."""
    seen: set[str] = set()
    for item in items:
        if item.custom_id in seen:
            raise ValueError(f"custom_id {item.custom_id!r} appears twice; each request needs its own")
        seen.add(item.custom_id)


def plan_batches(
    items: Sequence[BatchItem],
    limits: BatchLimits | None = None,
    *,
    max_enqueued_tokens: int | None = None,
) -> list[PlannedBatch]:
    """
    The batches to submit for ``items``, in order.

    ``limits`` defaults to each provider's published limits with ``max_enqueued_tokens`` as cap.
    """
    check_unique(items)
    groups: dict[tuple[str, str], list[BatchItem]] = {}
    for item in items:
        groups.setdefault((item.request.provider, item.request.model), []).append(item)
    plan: list[PlannedBatch] = []
    for (provider, model), group in groups.items():
        group_limits = limits or provider_limits(provider, max_enqueued_tokens)
        plan.extend(_cut(provider, model, group, group_limits))
    return plan


def _cut(provider: str, model: str, group: list[BatchItem], limits: BatchLimits) -> list[PlannedBatch]:
    byte_budget = limits.max_bytes - _ENVELOPE_BYTES
    out: list[PlannedBatch] = []
    current: list[BatchItem] = []
    size = tokens = 0
    for item in group:
        item_size, item_tokens = entry_size(item), enqueued_tokens(item)
        if item_size > byte_budget:
            raise BatchTooLargeError(
                f"request {item.custom_id!r} is {item_size} bytes; a batch holds at most {byte_budget}"
            )
        if limits.max_enqueued_tokens is not None and item_tokens > limits.max_enqueued_tokens:
            raise BatchTooLargeError(
                f"request {item.custom_id!r} has about {item_tokens} input tokens; the enqueued-token "
                f"cap per batch is {limits.max_enqueued_tokens}"
            )
        full = (
            len(current) >= limits.max_requests
            or size + item_size > byte_budget
            or (limits.max_enqueued_tokens is not None and tokens + item_tokens > limits.max_enqueued_tokens)
        )
        if current and full:
            out.append(PlannedBatch(provider, model, tuple(current), size, tokens))
            current, size, tokens = [], 0, 0
        current.append(item)
        size += item_size
        tokens += item_tokens
    if current:
        out.append(PlannedBatch(provider, model, tuple(current), size, tokens))
    return out
