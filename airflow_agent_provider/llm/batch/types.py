"""
Typed contracts of batch delivery, independent of the provider.

A batch is submitted from :class:`BatchItem` s (a ``custom_id`` and the same :class:`LLMRequest` a
real-time call would send), is known afterwards only by its :class:`BatchHandle` (JSON-safe, so
it can be kept in the task state store and in a trigger's kwargs, and a retried task can re-attach
to it), reports a :class:`BatchStatus` while it runs, and ends with one :class:`RequestOutcome`
per ``custom_id``. None of them ever holds credentials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_agent_provider.llm.types import LLMRequest, LLMResponse

BatchState = Literal["in_progress", "ended"]
OutcomeKind = Literal["succeeded", "errored", "expired", "cancelled"]
OUTCOME_KINDS: tuple[OutcomeKind, ...] = ("succeeded", "errored", "expired", "cancelled")

#: What both APIs accept as a ``custom_id`` (Anthropic's rule; OpenAI's is looser).
CUSTOM_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

#: Status codes of an errored request worth sending again (the rest would fail the same way).
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class BatchItem:
    """One request of a batch; ``custom_id`` matches its result and must be unique in the batch."""

    custom_id: str
    request: LLMRequest

    def __post_init__(self) -> None:
        if not CUSTOM_ID_PATTERN.match(self.custom_id):
            raise ValueError(f"custom_id {self.custom_id!r} must match {CUSTOM_ID_PATTERN.pattern}")


@dataclass(frozen=True)
class BatchHandle:
    """
    What identifies a submitted batch; keep it to re-attach after a worker dies or a task retries.

    ``input_file_id`` is the uploaded JSONL file of an OpenAI batch (None for Anthropic).
    """

    provider: str
    batch_id: str
    model: str
    custom_ids: tuple[str, ...]
    submitted_at: float
    input_file_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "batch_id": self.batch_id,
            "model": self.model,
            "custom_ids": list(self.custom_ids),
            "submitted_at": self.submitted_at,
            "input_file_id": self.input_file_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchHandle:
        return cls(
            provider=str(data["provider"]),
            batch_id=str(data["batch_id"]),
            model=str(data["model"]),
            custom_ids=tuple(str(c) for c in data["custom_ids"]),
            submitted_at=float(data["submitted_at"]),
            input_file_id=data.get("input_file_id"),
        )


@dataclass(frozen=True)
class BatchStatus:
    """
    Where a batch stands: ``in_progress`` until the provider has settled every request, then
    ``ended``. ``provider_status`` is the provider's own word (OpenAI ``completed``/``expired``/
    ``cancelled``/``failed``..., Anthropic ``in_progress``/``canceling``/``ended``).

    Counts are what the provider reports: Anthropic reports outcomes only once a batch has ended,
    OpenAI reports ``succeeded``/``errored`` as it goes. The per-request truth is in the results.
    """

    provider: str
    batch_id: str
    state: BatchState
    provider_status: str
    total: int
    succeeded: int = 0
    errored: int = 0
    expired: int = 0
    cancelled: int = 0
    processing: int = 0
    #: OpenAI only: the files holding the results of an ended batch.
    output_file_id: str | None = None
    error_file_id: str | None = None
    #: Why a batch failed as a whole (an OpenAI input file that did not validate).
    error: str | None = None

    @property
    def ended(self) -> bool:
        return self.state == "ended"


@dataclass(frozen=True)
class RequestOutcome:
    """
    The result of one request: ``succeeded`` with its :class:`LLMResponse` (usage included), or
    ``errored`` (``status_code`` and ``error`` say why), or ``expired`` / ``cancelled`` when the batch
    ended before the request ran.
    """

    custom_id: str
    kind: OutcomeKind
    response: LLMResponse | None = None
    error: str | None = None
    status_code: int | None = None
    #: The provider's error type or code (``server_error``, ``batch_expired``, ``rate_limit_error``...).
    error_type: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.kind == "succeeded"

    @property
    def retryable(self) -> bool:
        """Whether sending the request again can help: it never ran, or failed transiently."""
        if self.kind in ("expired", "cancelled"):
            return True
        return self.kind == "errored" and self.status_code in RETRYABLE_STATUS

    def to_dict(self) -> dict[str, Any]:
        return {
            "custom_id": self.custom_id,
            "kind": self.kind,
            "response": self.response.to_dict() if self.response is not None else None,
            "error": self.error,
            "status_code": self.status_code,
            "error_type": self.error_type,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestOutcome:
        kind = data["kind"]
        if kind not in OUTCOME_KINDS:
            raise ValueError(f"unknown outcome kind {kind!r}")
        response = data.get("response")
        return cls(
            custom_id=str(data["custom_id"]),
            kind=kind,
            response=LLMResponse.from_dict(response) if response is not None else None,
            error=data.get("error"),
            status_code=data.get("status_code"),
            error_type=data.get("error_type"),
        )


@dataclass(frozen=True)
class BatchLimits:
    """
    How much one batch may hold. ``max_bytes`` counts the encoded requests (OpenAI: the JSONL
    file; Anthropic: the create body); ``max_enqueued_tokens`` caps the estimated input tokens of
    one batch (the quantity the providers' enqueued-token limits count), None for no cap.
    """

    max_requests: int
    max_bytes: int
    max_enqueued_tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_requests", "max_bytes", "max_enqueued_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"BatchLimits.{name} must be at least 1, got {value}")


#: Published per-batch limits. Megabytes are read as 10**6 bytes, the smaller reading, so a file
#: that fits here fits whichever unit the provider means.
PROVIDER_LIMITS: dict[str, BatchLimits] = {
    "openai": BatchLimits(max_requests=50_000, max_bytes=200_000_000),
    "anthropic": BatchLimits(max_requests=100_000, max_bytes=256_000_000),
}


def provider_limits(provider: str, max_enqueued_tokens: int | None = None) -> BatchLimits:
    """The provider's per-batch limits, with an optional cap on enqueued (input) tokens."""
    try:
        limits = PROVIDER_LIMITS[provider]
    except KeyError:
        raise ValueError(f"no batch API known for provider {provider!r}") from None
    return BatchLimits(limits.max_requests, limits.max_bytes, max_enqueued_tokens)


@dataclass(frozen=True)
class BatchResults:
    """Every request's outcome, by ``custom_id``, of one ended batch."""

    status: BatchStatus
    outcomes: dict[str, RequestOutcome] = field(default_factory=dict)

    def of_kind(self, kind: OutcomeKind) -> list[RequestOutcome]:
        return [o for o in self.outcomes.values() if o.kind == kind]
