"""
OpenAI Chat Completions <-> neutral types.

Airflow-free on purpose: the same code builds requests on the worker and in the triggerer, and it
is unit-tested without an Airflow environment. Works for OpenAI and OpenAI-compatible endpoints
(vLLM, Ollama, LiteLLM) because it only uses the Chat Completions shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow_agent_provider.llm.adapter_common import (
    as_plain,
    common_call_kwargs,
    get,
    header,
    parse_tool_arguments,
    rate_limit_headers,
)
from airflow_agent_provider.llm.types import LLMRequest, LLMResponse, Message, ToolCall, Usage

PROVIDER = "openai"

#: Name of the JSON schema in ``response_format`` (OpenAI requires one).
OUTPUT_SCHEMA_NAME = "agent_output"

_FINISH_REASONS = {
    "stop": "stop",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "length": "length",
}


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content}
    if message.role == "assistant":
        # Content may be null only next to tool calls; an empty plain reply stays an empty string.
        out: dict[str, Any] = {
            "role": "assistant",
            "content": message.content or (None if message.tool_calls else ""),
        }
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    # The API wants the arguments back as the JSON text of an object.
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in message.tool_calls
            ]
        return out
    return {"role": "user", "content": message.content}


def build_kwargs(request: LLMRequest) -> dict[str, Any]:
    """
    Keyword arguments for ``client.chat.completions.create``.

    ``max_completion_tokens`` rather than ``max_tokens``: the gpt-5 and o-series models reject the
    latter, and the former is accepted by every current model.
    """
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend(_message(m) for m in request.messages)
    kwargs: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "max_completion_tokens": request.max_tokens,
    }
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.tools:
        kwargs["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
            }
            for t in request.tools
        ]
    if request.output_schema is not None:
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": OUTPUT_SCHEMA_NAME, "schema": request.output_schema, "strict": False},
        }
    kwargs.update(common_call_kwargs(request.timeout, request.extra_headers))
    return kwargs


def _usage(raw_usage: Any) -> Usage:
    details = get(raw_usage, "prompt_tokens_details")
    return Usage(
        input_tokens=int(get(raw_usage, "prompt_tokens", 0)),
        output_tokens=int(get(raw_usage, "completion_tokens", 0)),
        cached_input_tokens=int(get(details, "cached_tokens", 0)),
    )


def parse(raw_response: Any, headers: Mapping[str, str] | None = None, latency_s: float = 0.0) -> LLMResponse:
    """Normalise a ChatCompletion (SDK model or its dict) and its HTTP headers."""
    data = as_plain(raw_response)
    choices = get(data, "choices", [])
    choice = choices[0] if choices else {}
    message = get(choice, "message", {})
    content = get(message, "content", "")
    if isinstance(content, list):  # some compatible servers send content parts
        content = "".join(str(get(part, "text", "")) for part in content)
    calls = [
        ToolCall(
            id=str(get(call, "id", "")) or f"call_{i}",
            name=str(get(get(call, "function", {}), "name", "")),
            arguments=parse_tool_arguments(get(get(call, "function", {}), "arguments")),
        )
        for i, call in enumerate(get(message, "tool_calls", []))
    ]
    raw_finish = get(choice, "finish_reason")
    return LLMResponse(
        text=str(content or ""),
        tool_calls=calls,
        usage=_usage(get(data, "usage")),
        model=str(get(data, "model", "")),
        provider=PROVIDER,
        latency_s=round(float(latency_s), 6),
        request_id=header(headers, "x-request-id") or get(data, "id"),
        finish_reason=_FINISH_REASONS.get(raw_finish, raw_finish),
        rate_limit_headers=rate_limit_headers(headers),
    )
