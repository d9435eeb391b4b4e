"""
The request lines of a batch, built by the same adapters that build real-time calls.

A batch request is exactly the body ``chat.completions.create`` / ``messages.create`` would send,
so an agent behaves the same whichever delivery it uses. What the adapters add for the SDK call
itself (per-call timeout, extra HTTP headers) has no meaning inside a batch and is dropped.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.cost.estimate import estimate_input_tokens
from airflow_agent_provider.llm.adapters import get_adapter

if TYPE_CHECKING:
    from airflow_agent_provider.llm.batch.types import BatchItem

#: The endpoint every OpenAI batch line targets (the one the real-time adapter calls).
OPENAI_ENDPOINT = "/v1/chat/completions"

#: SDK call options the adapters return next to the body; not part of a request body.
_CALL_OPTIONS = ("timeout", "extra_headers", "extra_query", "extra_body")


def request_body(item: BatchItem) -> dict[str, Any]:
    """The API request body of ``item``, from its provider's real-time adapter."""
    kwargs: dict[str, Any] = get_adapter(item.request.provider).build_kwargs(item.request)
    return {key: value for key, value in kwargs.items() if key not in _CALL_OPTIONS}


def openai_line(item: BatchItem) -> dict[str, Any]:
    """One line of an OpenAI batch input file."""
    return {"custom_id": item.custom_id, "method": "POST", "url": OPENAI_ENDPOINT, "body": request_body(item)}


def anthropic_request(item: BatchItem) -> dict[str, Any]:
    """One entry of the ``requests`` of an Anthropic Message Batch."""
    return {"custom_id": item.custom_id, "params": request_body(item)}


def wire_entry(item: BatchItem) -> dict[str, Any]:
    """The provider's form of ``item`` (an OpenAI line or an Anthropic request)."""
    return openai_line(item) if item.request.provider == "openai" else anthropic_request(item)


def encode_line(entry: dict[str, Any]) -> bytes:
    """An entry as one JSONL line (UTF-8, newline-terminated)."""
    return (json.dumps(entry, ensure_ascii=False) + "\n").encode()


def jsonl(items: list[BatchItem]) -> bytes:
    """The OpenAI input file of ``items``."""
    return b"".join(encode_line(openai_line(item)) for item in items)


def entry_size(item: BatchItem) -> int:
    """Encoded bytes ``item`` adds to a batch (its JSONL line; the separator in a JSON array)."""
    return len(encode_line(wire_entry(item)))


def enqueued_tokens(item: BatchItem) -> int:
    """
    Estimated input tokens of ``item``: the providers' enqueued-token limits count input tokens.

    Estimated from the whole request body (messages, system, tool schemas, and the JSON around
    them), so it errs on the high side, which is the safe side of a cap.
    """
    return estimate_input_tokens(len(json.dumps(request_body(item), ensure_ascii=False)))
