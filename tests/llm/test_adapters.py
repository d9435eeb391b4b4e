"""Adapters: request shapes and parsing of provider responses (as the APIs document them)."""

from __future__ import annotations

import json

from airflow_agent_provider.llm import anthropic_adapter, openai_adapter
from airflow_agent_provider.llm.adapter_common import INVALID_ARGUMENTS_KEY
from airflow_agent_provider.llm.types import LLMRequest, Message, ToolCall, ToolSpec

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def _conversation(provider: str) -> LLMRequest:
    return LLMRequest(
        provider=provider,
        model="m",
        system="You are an ERP agent.",
        messages=[
            Message(role="user", content="Check invoices"),
            Message(
                role="assistant",
                content="",
                tool_calls=[
                    ToolCall(id="c1", name="lookup", arguments={"n": 1}),
                    ToolCall(id="c2", name="lookup", arguments={"n": 2}),
                ],
            ),
            Message(role="tool", content='{"ok": 1}', tool_call_id="c1", name="lookup"),
            Message(role="tool", content='{"ok": 2}', tool_call_id="c2", name="lookup"),
        ],
        tools=[ToolSpec(name="lookup", description="Look up", parameters=SCHEMA)],
        temperature=0.2,
        max_tokens=50,
        timeout=7.0,
        extra_headers={"x-llm-fail": "500"},
    )


def test_openai_build_kwargs_shape():
    kw = openai_adapter.build_kwargs(_conversation("openai"))
    assert kw["messages"][0] == {"role": "system", "content": "You are an ERP agent."}
    assert kw["messages"][1] == {"role": "user", "content": "Check invoices"}
    assistant = kw["messages"][2]
    assert assistant["content"] is None
    assert assistant["tool_calls"][0] == {
        "id": "c1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"n": 1}'},
    }
    assert kw["messages"][3] == {"role": "tool", "tool_call_id": "c1", "content": '{"ok": 1}'}
    assert kw["tools"] == [
        {"type": "function", "function": {"name": "lookup", "description": "Look up", "parameters": SCHEMA}}
    ]
    assert kw["max_completion_tokens"] == 50
    assert "max_tokens" not in kw
    assert kw["temperature"] == 0.2
    assert kw["timeout"] == 7.0
    assert kw["extra_headers"] == {"x-llm-fail": "500"}
    assert "response_format" not in kw


def test_openai_structured_output():
    req = LLMRequest(provider="openai", model="m", messages=[Message("user", "hi")], output_schema=SCHEMA)
    kw = openai_adapter.build_kwargs(req)
    assert kw["response_format"]["type"] == "json_schema"
    assert kw["response_format"]["json_schema"]["schema"] == SCHEMA
    assert "temperature" not in kw
    assert "system" not in json.dumps(kw["messages"])


def test_anthropic_build_kwargs_groups_tool_results():
    kw = anthropic_adapter.build_kwargs(_conversation("anthropic"))
    assert kw["system"] == "You are an ERP agent."
    assert kw["max_tokens"] == 50
    msgs = kw["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "lookup", "input": {"n": 1}},
        {"type": "tool_use", "id": "c2", "name": "lookup", "input": {"n": 2}},
    ]
    assert msgs[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": '{"ok": 1}'},
        {"type": "tool_result", "tool_use_id": "c2", "content": '{"ok": 2}'},
    ]
    assert kw["tools"] == [{"name": "lookup", "description": "Look up", "input_schema": SCHEMA}]
    assert "tool_choice" not in kw


def test_anthropic_structured_output_forced_tool():
    req = LLMRequest(provider="anthropic", model="m", messages=[Message("user", "hi")], output_schema=SCHEMA)
    kw = anthropic_adapter.build_kwargs(req)
    assert kw["tool_choice"] == {"type": "tool", "name": anthropic_adapter.OUTPUT_TOOL_NAME}
    assert kw["tools"][0]["input_schema"] == SCHEMA
    raw = {
        "id": "msg_1",
        "model": "m",
        "content": [
            {"type": "tool_use", "id": "t", "name": anthropic_adapter.OUTPUT_TOOL_NAME, "input": {"n": 3}}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 5, "output_tokens": 2},
    }
    resp = anthropic_adapter.parse(raw, {}, 0.1)
    assert json.loads(resp.text) == {"n": 3}
    assert resp.tool_calls == []
    assert resp.finish_reason == "stop"


OPENAI_RAW = {
    "id": "chatcmpl-1",
    "model": "gpt-5-mini",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"n": 4}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"n": '},
                    },
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 60}},
}


def test_openai_parse():
    headers = {
        "X-Request-Id": "req_123",
        "x-ratelimit-remaining-requests": "99",
        "Retry-After": "2",
        "Set-Cookie": "secret",
        "authorization": "Bearer sk-should-never-pass",
    }
    resp = openai_adapter.parse(OPENAI_RAW, headers, 0.25)
    assert resp.provider == "openai"
    assert resp.model == "gpt-5-mini"
    assert resp.text == ""
    assert resp.finish_reason == "tool_calls"
    assert resp.tool_calls[0].arguments == {"n": 4}
    assert INVALID_ARGUMENTS_KEY in resp.tool_calls[1].arguments
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.cached_input_tokens) == (
        100,
        20,
        60,
    )
    assert resp.request_id == "req_123"
    assert resp.latency_s == 0.25
    assert resp.rate_limit_headers == {"x-ratelimit-remaining-requests": "99", "retry-after": "2"}
    # JSON-safe round trip (it travels in trigger events and XCom)
    assert json.loads(json.dumps(resp.to_dict()))["usage"]["cached_input_tokens"] == 60


def test_anthropic_parse():
    raw = {
        "id": "msg_9",
        "model": "claude-sonnet-4-6",
        "content": [
            {"type": "text", "text": "Let me check. "},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"n": 1}},
        ],
        "stop_reason": "tool_use",
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 30,
            "cache_creation_input_tokens": 2,
        },
    }
    headers = {"request-id": "req_a", "anthropic-ratelimit-tokens-remaining": "5000", "x-api-key": "sk-ant"}
    resp = anthropic_adapter.parse(raw, headers, 1.5)
    assert resp.text == "Let me check. "
    assert resp.tool_calls == [ToolCall(id="toolu_1", name="lookup", arguments={"n": 1})]
    assert resp.finish_reason == "tool_calls"
    assert (resp.usage.input_tokens, resp.usage.cached_input_tokens) == (42, 30)
    assert resp.request_id == "req_a"
    assert resp.rate_limit_headers == {"anthropic-ratelimit-tokens-remaining": "5000"}


def test_request_round_trip_through_dict():
    req = _conversation("openai")
    again = LLMRequest.from_dict(json.loads(json.dumps(req.to_dict())))
    assert openai_adapter.build_kwargs(again) == openai_adapter.build_kwargs(req)
    assert anthropic_adapter.build_kwargs(again) == anthropic_adapter.build_kwargs(req)
