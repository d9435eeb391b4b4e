"""
The two wire formats of the local LLM server: OpenAI Chat Completions and Anthropic Messages.

Requests are reduced to a provider-neutral :class:`~airflow_agent_provider.testing.scripting.Conversation`
and replies are rendered back, so the reply rules exist once. The bodies mirror what the vendors
send (ids, ``usage`` details, ``finish_reason`` / ``stop_reason``, error envelopes), because the
point of the server is that the real SDKs parse them exactly as they parse the vendors' responses.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from airflow_agent_provider.testing.scripting import Conversation, Reply, Turn

Api = Literal["openai", "anthropic"]


def _text_of(content: Any) -> str:
    """Text of a message content that is a string or a list of parts/blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") in (None, "text", "input_text", "output_text"):
                parts.append(str(part.get("text", "")))
        return "\n".join(p for p in parts if p)
    return str(content)


def openai_conversation(body: dict[str, Any]) -> Conversation:
    """Translate an OpenAI Chat Completions request body."""
    conv = Conversation(model=str(body.get("model", "")))
    system_parts: list[str] = []
    call_names: dict[str, str] = {}
    chars = 0
    for msg in body.get("messages") or []:
        role = msg.get("role")
        text = _text_of(msg.get("content"))
        chars += len(text)
        if role in ("system", "developer"):
            system_parts.append(text)
        elif role == "assistant":
            for call in msg.get("tool_calls") or []:
                fn = call.get("function") or {}
                call_names[str(call.get("id"))] = str(fn.get("name", ""))
                chars += len(str(fn.get("name", ""))) + len(str(fn.get("arguments", "")))
            conv.turns.append(Turn("assistant", text))
        elif role in ("tool", "function"):
            name = call_names.get(str(msg.get("tool_call_id"))) or msg.get("name")
            conv.turns.append(Turn("tool", text, tool_name=name))
        else:
            conv.turns.append(Turn("user", text))
    conv.system = "\n".join(system_parts)
    tools = body.get("tools") or [{"type": "function", "function": f} for f in body.get("functions") or []]
    for tool in tools:
        fn = tool.get("function") or {}
        if fn.get("name"):
            conv.tools[str(fn["name"])] = fn.get("parameters") or {"type": "object", "properties": {}}
    if tools:
        chars += len(json.dumps(tools))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        conv.forced_tool = str(name) if name else None
    elif choice in ("none", "required"):
        conv.tool_choice = choice
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        conv.output_schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
    elif fmt.get("type") == "json_object":
        conv.output_schema = {}
    conv.input_chars = chars
    return conv


def anthropic_conversation(body: dict[str, Any]) -> Conversation:
    """Translate an Anthropic Messages request body."""
    conv = Conversation(model=str(body.get("model", "")))
    conv.system = _text_of(body.get("system"))
    chars = len(conv.system)
    call_names: dict[str, str] = {}
    for msg in body.get("messages") or []:
        role = msg.get("role", "user")
        content = msg.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
        text = _text_of([b for b in blocks if isinstance(b, dict) and b.get("type") == "text"])
        chars += len(text)
        results: list[Turn] = []
        for block in blocks:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use":
                call_names[str(block.get("id"))] = str(block.get("name", ""))
                chars += len(str(block.get("name", ""))) + len(json.dumps(block.get("input") or {}))
            elif block.get("type") == "tool_result":
                result_text = _text_of(block.get("content"))
                chars += len(result_text)
                results.append(
                    Turn("tool", result_text, tool_name=call_names.get(str(block.get("tool_use_id"))))
                )
        if role == "assistant":
            conv.turns.append(Turn("assistant", text))
        else:
            if text or not results:
                conv.turns.append(Turn("user", text))
            conv.turns.extend(results)
    tools = body.get("tools") or []
    for tool in tools:
        if tool.get("name"):
            conv.tools[str(tool["name"])] = tool.get("input_schema") or {"type": "object", "properties": {}}
    if tools:
        chars += len(json.dumps(tools))
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool" and choice.get("name"):
        conv.forced_tool = str(choice["name"])
    elif choice.get("type") == "any":
        conv.tool_choice = "required"
    elif choice.get("type") == "none":
        conv.tool_choice = "none"
    fmt = (body.get("output_config") or {}).get("format") or body.get("output_format") or {}
    if fmt.get("type") == "json_schema":
        conv.output_schema = fmt.get("schema") or {"type": "object"}
    conv.input_chars = chars
    return conv


# --------------------------------------------------------------------------------------------------
# Response translation: Reply -> wire format
# --------------------------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def openai_body(conv: Conversation, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.tool_calls:
        message["content"] = None
        message["tool_calls"] = [
            {"id": new_id("call_"), "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for n, a in reply.tool_calls
        ]
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": conv.model,
        "system_fingerprint": "fp_local",
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
    }


def anthropic_body(conv: Conversation, reply: Reply) -> dict[str, Any]:
    if reply.tool_calls:
        content: list[dict[str, Any]] = [
            {"type": "tool_use", "id": new_id("toolu_"), "name": n, "input": a} for n, a in reply.tool_calls
        ]
    else:
        content = [{"type": "text", "text": reply.text or ""}]
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": conv.model,
        "content": content,
        "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": reply.input_tokens - reply.cached_tokens,
            "output_tokens": reply.output_tokens,
            "cache_read_input_tokens": reply.cached_tokens,
            "cache_creation_input_tokens": 0,
        },
    }


_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (injected)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to access this resource."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", "conflict", "Conflict."),
    413: ("invalid_request_error", "request_too_large", "Request too large."),
    422: ("invalid_request_error", None, "Unprocessable request."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", "bad_gateway", "Bad gateway."),
    503: ("server_error", "service_unavailable", "The engine is currently overloaded."),
    504: ("server_error", "gateway_timeout", "Gateway timeout."),
    529: ("server_error", "overloaded", "Overloaded."),
}

_ANTHROPIC_ERRORS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_body(api: Api, code: int, request_id: str, message: str | None = None) -> dict[str, Any]:
    """An error body in the real format of ``api``."""
    if api == "openai":
        err_type, err_code, default = _OPENAI_ERRORS.get(code, ("server_error", None, "Error."))
        return {"error": {"message": message or default, "type": err_type, "param": None, "code": err_code}}
    err_type = _ANTHROPIC_ERRORS.get(code, "api_error")
    text = message or err_type.replace("_", " ").capitalize() + " (local test server)."
    return {"type": "error", "error": {"type": err_type, "message": text}, "request_id": request_id}
