"""
Batches of the local LLM server: configuration, the in-memory store and the clock that moves them on.

Both batch APIs (OpenAI Batch, Anthropic Message Batches) share one model: a batch is a list of
requests, each finishes at a time derived from the configuration, and the batch ends ``completed``
when all have finished, ``expired`` when the completion window closes first (unfinished requests
are marked expired), or ``cancelled`` after a cancel (unfinished requests are marked cancelled).

Nothing runs in the background: every read of a batch calls :meth:`BatchStore.advance`, which
answers the requests that are due by now. That keeps the server deterministic under load (no task
races the test) and makes a "processing delay" exactly the configured seconds after creation.
The store's clock is wall time plus an offset that tests move forward (:meth:`BatchStore.advance_clock`,
``POST /_admin/batch/advance``), so an expiry or a processing delay is reached without sleeping and
without racing a loaded machine.
Each request is answered by the same scripted reply rules as a real-time call (see
:mod:`airflow_agent_provider.testing.batch_replies`), so its usage tokens are real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airflow_agent_provider.testing.scripting import FAIL_CODES
from airflow_agent_provider.testing.wire import Api, error_body, new_id

#: The providers' completion window (both: 24 hours).
DEFAULT_WINDOW_SECONDS = 24 * 3600.0

Outcome = Literal["succeeded", "errored", "expired", "cancelled"]
EndStatus = Literal["completed", "expired", "cancelled", "failed"]

#: ``(status_code, body)`` of one answered request: the body of a 200 or an error envelope.
Answer = tuple[int, dict[str, Any]]
Answerer = Callable[[Api, dict[str, Any]], Answer]


class BatchConfig(BaseModel):
    """
    How batches behave; set with ``POST /_admin/batch/config`` (``LLMServer.batch_configure``).

    A configuration is captured when a batch is created, so changing it affects later batches only.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: Seconds from creation until the first request has an answer (the processing delay).
    processing_seconds: float = Field(0.0, ge=0)
    #: Further seconds per request, in input order (request ``i`` finishes at delay + i * this).
    request_seconds: float = Field(0.0, ge=0)
    #: The completion window: requests not finished this long after creation expire.
    expire_after_seconds: float = Field(DEFAULT_WINDOW_SECONDS, gt=0)
    #: ``custom_id`` -> status code that request is answered with (an errored request).
    fail: dict[str, int] = Field(default_factory=dict)
    #: ``custom_id`` s that never finish, so their batch can only expire or be cancelled.
    unfinished: list[str] = Field(default_factory=list)
    #: Seconds a batch stays ``cancelling`` / ``canceling`` after a cancel request.
    cancel_seconds: float = Field(0.0, ge=0)

    @field_validator("fail")
    @classmethod
    def _known_codes(cls, fail: dict[str, int]) -> dict[str, int]:
        """Only status codes the server can render, so a typo fails at configuration time."""
        for custom_id, code in fail.items():
            if code not in FAIL_CODES:
                raise ValueError(f"fail[{custom_id!r}]: {code} is not one of {sorted(FAIL_CODES)}")
        return fail


@dataclass
class StoredFile:
    """An uploaded input file or a generated output/error file (OpenAI Files)."""

    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int


@dataclass
class ItemResult:
    """What became of one request of a batch."""

    outcome: Outcome
    status_code: int = 0
    body: dict[str, Any] | None = None
    request_id: str = field(default_factory=lambda: new_id("req_"))


@dataclass
class BatchItem:
    """One request of a batch: its ``custom_id``, the request body and, once finished, its result."""

    custom_id: str
    body: dict[str, Any]
    result: ItemResult | None = None


@dataclass
class StoredBatch:
    """A batch of either API; the wire modules render it in their own format."""

    id: str
    api: Api
    items: list[BatchItem]
    config: BatchConfig
    created_at: float
    endpoint: str = ""
    input_file_id: str = ""
    metadata: dict[str, str] | None = None
    cancel_requested_at: float | None = None
    ended_at: float | None = None
    end_status: EndStatus | None = None
    #: Validation errors of a ``failed`` OpenAI batch: ``{"code", "message", "line", "param"}``.
    errors: list[dict[str, Any]] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None

    @property
    def expires_at(self) -> float:
        return self.created_at + self.config.expire_after_seconds

    @property
    def models(self) -> list[str]:
        """Distinct models of the requests, in first-seen order."""
        seen: dict[str, None] = {}
        for item in self.items:
            seen.setdefault(str(item.body.get("model", "")), None)
        return list(seen)

    def counts(self) -> dict[str, int]:
        """Finished requests by outcome, plus ``processing`` and ``total``."""
        out = {"succeeded": 0, "errored": 0, "expired": 0, "cancelled": 0}
        for item in self.items:
            if item.result is not None:
                out[item.result.outcome] += 1
        out["processing"] = len(self.items) - sum(out.values())
        out["total"] = len(self.items)
        return out

    def finish_time(self, index: int) -> float | None:
        """When request ``index`` is answered, or None if it never is (configured ``unfinished``)."""
        if self.items[index].custom_id in self.config.unfinished:
            return None
        return self.created_at + self.config.processing_seconds + index * self.config.request_seconds


class BatchStore:
    """All files and batches of one server, with per-provider/model creation counts for tests."""

    def __init__(
        self,
        answer: Answerer,
        config: BatchConfig | None = None,
        on_end: Callable[[BatchStore, StoredBatch], None] | None = None,
    ) -> None:
        """``answer`` replies to one request; ``on_end`` runs once when a batch ends (result files)."""
        self._answer = answer
        self._on_end = on_end
        self._start_config = (config or BatchConfig()).model_copy(deep=True)
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.config = self._start_config.model_copy(deep=True)
            self.files: dict[str, StoredFile] = {}
            self.batches: dict[str, StoredBatch] = {}
            self.created: dict[str, dict[str, int]] = {}
            self.answered = 0
            self._offset = 0.0

    def now(self) -> float:
        """The store's clock: wall time moved on by every :meth:`advance_clock` since the last reset."""
        return time.time() + self._offset

    def advance_clock(self, seconds: float) -> float:
        """Move the clock ``seconds`` forward (never back); returns the new time."""
        if seconds < 0:
            raise ValueError("the batch clock only moves forward")
        with self._lock:
            self._offset += seconds
            return self.now()

    def configure(self, fields: dict[str, Any]) -> BatchConfig:
        with self._lock:
            self.config = BatchConfig(**(self.config.model_dump() | fields))
            return self.config

    # -- files --------------------------------------------------------------------------------------

    def add_file(self, filename: str, purpose: str, content: bytes) -> StoredFile:
        stored = StoredFile(new_id("file-"), filename, purpose, content, int(self.now()))
        with self._lock:
            self.files[stored.id] = stored
        return stored

    def file(self, file_id: str) -> StoredFile | None:
        with self._lock:
            return self.files.get(file_id)

    # -- batches ------------------------------------------------------------------------------------

    def create(self, api: Api, items: list[BatchItem], **attrs: Any) -> StoredBatch:
        """Store a new batch (``attrs``: endpoint, input_file_id, metadata, errors) and count it."""
        prefix = "batch_" if api == "openai" else "msgbatch_"
        with self._lock:
            batch = StoredBatch(
                id=new_id(prefix),
                api=api,
                items=items,
                config=self.config.model_copy(deep=True),
                created_at=self.now(),
                **attrs,
            )
            if batch.errors:
                batch.end_status, batch.ended_at = "failed", batch.created_at
            self.batches[batch.id] = batch
            per_model = self.created.setdefault(api, {})
            for model in batch.models:
                per_model[model] = per_model.get(model, 0) + 1
            return batch

    def get(self, batch_id: str, api: Api, now: float | None = None) -> StoredBatch | None:
        """The batch of ``api``, moved on to ``now``; None if unknown."""
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None or batch.api != api:
                return None
            self.advance(batch, self.now() if now is None else now)
            return batch

    def list_batches(self, api: Api, limit: int, after: str | None = None) -> list[StoredBatch]:
        """Batches of ``api``, newest first, starting after the batch ``after`` (a page cursor)."""
        now = self.now()
        with self._lock:
            newest_first = [b for b in reversed(self.batches.values()) if b.api == api]
            if after is not None:
                ids = [b.id for b in newest_first]
                newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
            page = newest_first[:limit]
            for batch in page:
                self.advance(batch, now)
            return page

    def cancel(self, batch_id: str, api: Api) -> StoredBatch | None:
        """Ask to cancel: requests not answered by now will be ``cancelled``."""
        now = self.now()
        with self._lock:
            batch = self.get(batch_id, api, now)
            if batch is not None and batch.ended_at is None and batch.cancel_requested_at is None:
                batch.cancel_requested_at = now
                self.advance(batch, now)
            return batch

    def advance(self, batch: StoredBatch, now: float) -> None:
        """Answer the requests due by ``now`` and end the batch when its last request is settled."""
        with self._lock:
            if batch.ended_at is not None:
                return
            horizon = min(now, batch.expires_at)
            if batch.cancel_requested_at is not None:
                horizon = min(horizon, batch.cancel_requested_at)
            for index, item in enumerate(batch.items):
                due = batch.finish_time(index)
                if item.result is None and due is not None and due <= horizon:
                    item.result = self._result(batch, item)
            pending = [item for item in batch.items if item.result is None]
            if not pending:
                finished = [t for i in range(len(batch.items)) if (t := batch.finish_time(i)) is not None]
                self._end(batch, "completed", min(max(finished, default=now), now))
            elif batch.cancel_requested_at is not None:
                if now >= batch.cancel_requested_at + batch.config.cancel_seconds:
                    self._settle(pending, "cancelled")
                    self._end(batch, "cancelled", now)
            elif now >= batch.expires_at:
                self._settle(pending, "expired")
                self._end(batch, "expired", batch.expires_at)

    def _result(self, batch: StoredBatch, item: BatchItem) -> ItemResult:
        self.answered += 1
        code = batch.config.fail.get(item.custom_id)
        if code is not None:
            request_id = new_id("req_")
            return ItemResult("errored", code, error_body(batch.api, code, request_id), request_id)
        status, body = self._answer(batch.api, item.body)
        return ItemResult("succeeded" if status == 200 else "errored", status, body)

    @staticmethod
    def _settle(items: list[BatchItem], outcome: Outcome) -> None:
        for item in items:
            item.result = ItemResult(outcome)

    def _end(self, batch: StoredBatch, status: EndStatus, at: float) -> None:
        batch.end_status, batch.ended_at = status, at
        if self._on_end is not None:
            self._on_end(self, batch)

    # -- admin --------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Batches created per provider and model, and a summary of every batch (moved on to now)."""
        with self._lock:
            summaries = []
            for batch in self.batches.values():
                self.advance(batch, self.now())
                summaries.append(
                    {
                        "id": batch.id,
                        "api": batch.api,
                        "models": batch.models,
                        "status": batch.end_status or "in_progress",
                        "counts": batch.counts(),
                        "input_tokens": sum(_tokens(i, "in") for i in batch.items),
                        "output_tokens": sum(_tokens(i, "out") for i in batch.items),
                    }
                )
            return {
                "created": {api: dict(models) for api, models in self.created.items()},
                "batches": summaries,
                "files": len(self.files),
                "answered_requests": self.answered,
            }


def _tokens(item: BatchItem, which: Literal["in", "out"]) -> int:
    """Tokens of a succeeded request, as its body reports them (either API's usage shape)."""
    if item.result is None or item.result.outcome != "succeeded" or item.result.body is None:
        return 0
    usage = item.result.body.get("usage") or {}
    if which == "out":
        return int(usage.get("completion_tokens", usage.get("output_tokens", 0)))
    if "prompt_tokens" in usage:
        return int(usage["prompt_tokens"])
    return int(usage.get("input_tokens", 0)) + int(usage.get("cache_read_input_tokens", 0))
