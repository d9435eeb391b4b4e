"""
Anthropic Messages <-> neutral types.

Airflow-free, like the OpenAI adapter. The Messages API differs from Chat Completions in ways
the rest of the provider must never see: the system prompt is a parameter, tool results are
``tool_result`` blocks inside a *user* message, and structured output is obtained by forcing
a tool whose input schema is the output schema.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
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

PROVIDER = "anthropic"

#: The tool that carries structured output; its input is the answer, it is never executed.
OUTPUT_TOOL_NAME = "agent_output"

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "refusal",
}


log = logging.getLogger(__name__)


def _assistant(message: Message) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
    if not blocks:  # the API rejects empty content
        blocks.append({"type": "text", "text": "(no content)"})
    return {"role": "assistant", "content": blocks}


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Convert messages, grouping consecutive tool results into one user message as the API requires."""
    out: list[dict[str, Any]] = []
    pending_results: list[dict[str, Any]] = []

    def flush() -> None:
        if pending_results:
            out.append({"role": "user", "content": list(pending_results)})
            pending_results.clear()

    for message in messages:
        if message.role == "tool":
            pending_results.append(
                {"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": message.content}
            )
            continue
        flush()
        if message.role == "assistant":
            out.append(_assistant(message))
        else:
            out.append({"role": "user", "content": message.content})
    flush()
    return out


@functools.cache
def _sdk_accepts(parameter: str) -> bool:
    """Whether the installed SDK's ``messages.create`` takes ``parameter`` (it changes across majors)."""
    from anthropic.resources.messages import Messages

    return parameter in inspect.signature(Messages.create).parameters


def build_kwargs(request: LLMRequest) -> dict[str, Any]:
    """Keyword arguments for ``client.messages.create``."""
    kwargs: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(request.messages),
        "max_tokens": request.max_tokens,
    }
    if request.system:
        kwargs["system"] = request.system
    if request.temperature is not None:
        if _sdk_accepts("temperature"):
            kwargs["temperature"] = request.temperature
        else:
            log.warning(
                "temperature=%s ignored: the installed anthropic SDK's Messages API no longer takes it",
                request.temperature,
            )
    tools = [
        {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
    ]
    if request.output_schema is not None:
        tools.append(
            {
                "name": OUTPUT_TOOL_NAME,
                "description": "Give the final answer. Its input is the answer, in the required structure.",
                "input_schema": request.output_schema,
            }
        )
        # With no other tool the answer can be forced; with tools the model must first be free to use them.
        kwargs["tool_choice"] = (
            {"type": "tool", "name": OUTPUT_TOOL_NAME} if not request.tools else {"type": "any"}
        )
    if tools:
        kwargs["tools"] = tools
    kwargs.update(common_call_kwargs(request.timeout, request.extra_headers))
    return kwargs


def _usage(raw_usage: Any) -> Usage:
    # Anthropic's input_tokens excludes cache reads and writes; the neutral Usage counts all input
    # in input_tokens, of which cached_input_tokens were read from cache.
    cache_read = int(get(raw_usage, "cache_read_input_tokens", 0))
    cache_write = int(get(raw_usage, "cache_creation_input_tokens", 0))
    return Usage(
        input_tokens=int(get(raw_usage, "input_tokens", 0)) + cache_read + cache_write,
        output_tokens=int(get(raw_usage, "output_tokens", 0)),
        cached_input_tokens=cache_read,
    )


def parse(raw_response: Any, headers: Mapping[str, str] | None = None, latency_s: float = 0.0) -> LLMResponse:
    """Normalise a Message (SDK model or its dict) and its HTTP headers."""
    data = as_plain(raw_response)
    texts: list[str] = []
    calls: list[ToolCall] = []
    structured: str | None = None
    for i, block in enumerate(get(data, "content", [])):
        kind = get(block, "type")
        if kind == "text":
            texts.append(str(get(block, "text", "")))
        elif kind == "tool_use":
            name = str(get(block, "name", ""))
            arguments = parse_tool_arguments(get(block, "input", {}))
            if name == OUTPUT_TOOL_NAME:
                structured = json.dumps(arguments)
            else:
                calls.append(
                    ToolCall(id=str(get(block, "id", "")) or f"toolu_{i}", name=name, arguments=arguments)
                )
    raw_finish = get(data, "stop_reason")
    finish = _FINISH_REASONS.get(raw_finish, raw_finish)
    text = "".join(texts)
    if structured is not None and not calls:
        # The forced output tool is the answer, not a call to run.
        text, finish = structured, "stop"
    return LLMResponse(
        text=text,
        tool_calls=calls,
        usage=_usage(get(data, "usage")),
        model=str(get(data, "model", "")),
        provider=PROVIDER,
        latency_s=round(float(latency_s), 6),
        request_id=header(headers, "request-id") or get(data, "id"),
        finish_reason=finish,
        rate_limit_headers=rate_limit_headers(headers),
    )
