"""
OpenAI Batch API through the official SDK: ``files.create`` + ``batches.create``, ``batches.retrieve``,
``files.content`` for the output and error files, ``batches.cancel``.

The parsing is pure (SDK models or their dicts in, neutral types out) and shared by the sync
(worker) and async (triggerer) calls, which are thin. Succeeded lines are parsed by the real-time
adapter, so a batch answer is the same :class:`LLMResponse` (usage included) a real-time call gives.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.llm import openai_adapter
from airflow_agent_provider.llm.adapter_common import as_plain, get
from airflow_agent_provider.llm.batch.lines import OPENAI_ENDPOINT, jsonl
from airflow_agent_provider.llm.batch.types import (
    BatchHandle,
    BatchItem,
    BatchStatus,
    OutcomeKind,
    RequestOutcome,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI

PROVIDER = "openai"
COMPLETION_WINDOW = "24h"
#: Metadata key carrying the caller's submission key, by which :func:`find` re-attaches.
SUBMISSION_KEY = "aap_submission"
#: How many of the newest batches :func:`find` looks through.
FIND_SCAN = 500

_ENDED = frozenset({"completed", "expired", "cancelled", "failed"})
#: Error codes of requests a batch never ran.
_NOT_RUN: dict[str, OutcomeKind] = {"batch_expired": "expired", "batch_cancelled": "cancelled"}


def _upload_args(items: list[BatchItem]) -> dict[str, Any]:
    return {"file": ("batch.jsonl", jsonl(items), "application/jsonl"), "purpose": "batch"}


def _create_args(file_id: str, metadata: dict[str, str] | None, submission_key: str | None) -> dict[str, Any]:
    args: dict[str, Any] = {
        "input_file_id": file_id,
        "endpoint": OPENAI_ENDPOINT,
        "completion_window": COMPLETION_WINDOW,
    }
    tags = dict(metadata or {})
    if submission_key:
        tags[SUBMISSION_KEY] = submission_key
    if tags:
        args["metadata"] = tags
    return args


def _matches(raw_batch: Any, submission_key: str) -> bool:
    return bool(get(get(raw_batch, "metadata", {}), SUBMISSION_KEY) == submission_key)


def _handle(raw_batch: Any, items: list[BatchItem]) -> BatchHandle:
    return BatchHandle(
        provider=PROVIDER,
        batch_id=str(get(raw_batch, "id")),
        model=items[0].request.model,
        custom_ids=tuple(item.custom_id for item in items),
        submitted_at=float(get(raw_batch, "created_at", 0)) or time.time(),
        input_file_id=str(get(raw_batch, "input_file_id")),
    )


def parse_status(raw_batch: Any) -> BatchStatus:
    """A ``Batch`` (SDK model or dict) as a :class:`BatchStatus`."""
    data = as_plain(raw_batch)
    provider_status = str(get(data, "status", ""))
    counts = get(data, "request_counts", {})
    total = int(get(counts, "total", 0))
    succeeded, errored = int(get(counts, "completed", 0)), int(get(counts, "failed", 0))
    ended = provider_status in _ENDED
    unfinished = max(0, total - succeeded - errored)
    errors = [str(get(e, "message", "")) for e in get(get(data, "errors", {}), "data", [])]
    return BatchStatus(
        provider=PROVIDER,
        batch_id=str(get(data, "id")),
        state="ended" if ended else "in_progress",
        provider_status=provider_status,
        total=total,
        succeeded=succeeded,
        errored=errored,
        expired=unfinished if provider_status == "expired" else 0,
        cancelled=unfinished if provider_status == "cancelled" else 0,
        processing=0 if ended else unfinished,
        output_file_id=get(data, "output_file_id"),
        error_file_id=get(data, "error_file_id"),
        error="; ".join(e for e in errors if e) or None,
    )


def parse_line(line: dict[str, Any]) -> RequestOutcome:
    """One line of an output or error file."""
    custom_id = str(get(line, "custom_id", ""))
    response, error = get(line, "response"), get(line, "error")
    status_code = int(get(response, "status_code", 0)) if response else None
    if response and status_code == 200:
        request_id = get(response, "request_id")
        headers = {"x-request-id": str(request_id)} if request_id else None
        parsed = openai_adapter.parse(get(response, "body", {}), headers=headers)
        return RequestOutcome(custom_id, "succeeded", response=parsed, status_code=200)
    if error:
        code = str(get(error, "code", ""))
        return RequestOutcome(
            custom_id,
            _NOT_RUN.get(code, "errored"),
            error=str(get(error, "message", code)),
            status_code=status_code,
            error_type=code or None,
        )
    body_error = get(get(response, "body", {}), "error", {})
    return RequestOutcome(
        custom_id,
        "errored",
        error=str(get(body_error, "message", f"HTTP {status_code}")),
        status_code=status_code,
        error_type=get(body_error, "type"),
    )


def parse_files(texts: Iterable[str]) -> dict[str, RequestOutcome]:
    """All outcomes in the downloaded output and error files, by ``custom_id``."""
    outcomes: dict[str, RequestOutcome] = {}
    for text in texts:
        for raw in text.splitlines():
            if raw.strip():
                outcome = parse_line(json.loads(raw))
                outcomes[outcome.custom_id] = outcome
    return outcomes


def result_files(status: BatchStatus) -> list[str]:
    return [f for f in (status.output_file_id, status.error_file_id) if f]


# -- sync (worker) --------------------------------------------------------------------------------


def submit(
    client: OpenAI,
    items: list[BatchItem],
    metadata: dict[str, str] | None = None,
    submission_key: str | None = None,
) -> BatchHandle:
    """
    Upload the input file and create the batch.

    The create call is sent once, without the SDK's retries: OpenAI takes no idempotency key, so
    a retried create whose first attempt did arrive would start a second, paid batch. A caller that
    saw the create fail looks for it with :func:`find` before submitting again.
    """
    uploaded = client.files.create(**_upload_args(items))
    created = client.with_options(max_retries=0).batches.create(
        **_create_args(uploaded.id, metadata, submission_key)
    )
    return _handle(created, items)


def find(client: OpenAI, items: list[BatchItem], submission_key: str) -> BatchHandle | None:
    """The batch created with ``submission_key`` among the newest :data:`FIND_SCAN`, if any."""
    for count, raw_batch in enumerate(client.batches.list(limit=100)):
        if count >= FIND_SCAN:
            break
        if _matches(raw_batch, submission_key):
            return _handle(raw_batch, items)
    return None


def retrieve(client: OpenAI, batch_id: str) -> BatchStatus:
    return parse_status(client.batches.retrieve(batch_id))


def cancel(client: OpenAI, batch_id: str) -> BatchStatus:
    return parse_status(client.batches.cancel(batch_id))


def download(client: OpenAI, status: BatchStatus) -> dict[str, RequestOutcome]:
    """The outcomes in an ended batch's result files."""
    return parse_files(client.files.content(file_id).text for file_id in result_files(status))


# -- async (triggerer) ----------------------------------------------------------------------------


async def asubmit(
    client: AsyncOpenAI,
    items: list[BatchItem],
    metadata: dict[str, str] | None = None,
    submission_key: str | None = None,
) -> BatchHandle:
    uploaded = await client.files.create(**_upload_args(items))
    created = await client.with_options(max_retries=0).batches.create(
        **_create_args(uploaded.id, metadata, submission_key)
    )
    return _handle(created, items)


async def afind(client: AsyncOpenAI, items: list[BatchItem], submission_key: str) -> BatchHandle | None:
    count = 0
    async for raw_batch in client.batches.list(limit=100):
        if count >= FIND_SCAN:
            break
        if _matches(raw_batch, submission_key):
            return _handle(raw_batch, items)
        count += 1
    return None


async def aretrieve(client: AsyncOpenAI, batch_id: str) -> BatchStatus:
    return parse_status(await client.batches.retrieve(batch_id))


async def acancel(client: AsyncOpenAI, batch_id: str) -> BatchStatus:
    return parse_status(await client.batches.cancel(batch_id))


async def adownload(client: AsyncOpenAI, status: BatchStatus) -> dict[str, RequestOutcome]:
    texts = [(await client.files.content(file_id)).text for file_id in result_files(status)]
    return parse_files(texts)
