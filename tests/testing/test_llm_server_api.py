"""The local server through the real SDKs: text, usage, headers, tools, structured output."""

from __future__ import annotations

import asyncio
import json

import anthropic
import openai
from pydantic import BaseModel

WEATHER_TOOL_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"enum": ["C", "F"]}},
    "required": ["city", "days", "unit"],
}
OPENAI_TOOLS = [{"type": "function", "function": {"name": "forecast", "parameters": WEATHER_TOOL_SCHEMA}}]
ANTHROPIC_TOOLS = [
    {"name": "forecast", "description": "Weather forecast", "input_schema": WEATHER_TOOL_SCHEMA}
]


class Invoice(BaseModel):
    number: str
    amount: float
    lines: list[int]
    approved: bool


def test_openai_text_usage_and_headers(llm, oai):
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-5-mini",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "Summarise Q3 payroll"},
        ],
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "[gpt-5-mini] Summarise Q3 payroll"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.id.startswith("chatcmpl-")
    # ceil((8 + 20) / 4) = 7 in, ceil(len(reply) / 4) out
    assert completion.usage.prompt_tokens == 7
    assert completion.usage.completion_tokens == 9
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-ratelimit-limit-requests"] == "10000"
    assert raw.headers["x-ratelimit-remaining-requests"] == "9999"
    assert raw.headers["x-ratelimit-reset-requests"] == "1s"
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 2_000_000 - 16
    assert "x-ratelimit-reset-tokens" in raw.headers


def test_anthropic_text_usage_and_headers(ant):
    raw = ant.messages.with_raw_response.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        system=[{"type": "text", "text": "be brief"}],
        messages=[{"role": "user", "content": "Count stock [[usage: in=100 out=20 cached=10]]"}],
    )
    message = raw.parse()
    assert message.content[0].text == "[claude-sonnet-4-6] Count stock"
    assert message.stop_reason == "end_turn"
    assert message.id.startswith("msg_")
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (90, 10)
    assert message.usage.output_tokens == 20
    assert raw.headers["request-id"].startswith("req_")
    for kind in ("requests", "tokens"):
        for part in ("limit", "remaining", "reset"):
            assert f"anthropic-ratelimit-{kind}-{part}" in raw.headers


def test_async_clients_and_reply_marker(llm):
    async def run() -> tuple[str, str]:
        oai = openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="k", max_retries=0)
        ant = anthropic.AsyncAnthropic(base_url=llm.anthropic_base_url, api_key="k", max_retries=0)
        a = await oai.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "[[reply: exact]]"}]
        )
        b = await ant.messages.create(
            model="c",
            max_tokens=10,
            system="[[reply: from system]]",
            messages=[{"role": "user", "content": "x"}],
        )
        return a.choices[0].message.content, b.content[0].text

    assert asyncio.run(run()) == ("exact", "from system")


def test_openai_tool_round_trip(oai):
    messages = [
        {"role": "user", "content": 'Weather? [[tool:forecast {"city": "Oslo", "days": 2, "unit": "C"}]]'}
    ]
    first = oai.chat.completions.create(model="gpt-5-mini", messages=messages, tools=OPENAI_TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "forecast",
        {"city": "Oslo", "days": 2, "unit": "C"},
    )
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "rain, 7 degrees"},
    ]
    second = oai.chat.completions.create(model="gpt-5-mini", messages=messages, tools=OPENAI_TOOLS)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "[gpt-5-mini] Tool results: forecast -> rain, 7 degrees"


def test_anthropic_default_tool_round_trip_without_markers(ant):
    messages = [{"role": "user", "content": "What is the weather?"}]
    first = ant.messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=messages, tools=ANTHROPIC_TOOLS
    )
    assert first.stop_reason == "tool_use"
    (block,) = first.content
    assert (block.name, block.input) == ("forecast", {"city": "example", "days": 1, "unit": "C"})
    assert block.id.startswith("toolu_")
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}]},
    ]
    second = ant.messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=messages, tools=ANTHROPIC_TOOLS
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "[claude-haiku-4-5] Tool results: forecast -> sunny"


def test_openai_default_tool_call_and_tool_loop(oai):
    first = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "plan"}], tools=OPENAI_TOOLS
    )
    assert json.loads(first.choices[0].message.tool_calls[0].function.arguments) == {
        "city": "example",
        "days": 1,
        "unit": "C",
    }
    messages = [
        {"role": "user", "content": "again [[tool-loop:forecast]]"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "forecast", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]
    looped = oai.chat.completions.create(model="m", messages=messages, tools=OPENAI_TOOLS)
    assert looped.choices[0].message.tool_calls[0].function.name == "forecast"
    none = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "plan"}], tools=OPENAI_TOOLS, tool_choice="none"
    )
    assert none.choices[0].message.content == "[m] plan"


def test_openai_structured_output(oai):
    parsed = oai.chat.completions.parse(
        model="gpt-5-mini", messages=[{"role": "user", "content": "invoice"}], response_format=Invoice
    )
    assert parsed.choices[0].message.parsed == Invoice(number="example", amount=1.0, lines=[1], approved=True)
    raw = oai.chat.completions.create(
        model="gpt-5-mini",
        messages=[{"role": "user", "content": "invoice [[json: {not json]]"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": Invoice.model_json_schema()},
        },
    )
    assert raw.choices[0].message.content == "{not json"


def test_anthropic_structured_output(ant):
    schema = Invoice.model_json_schema()
    forced = ant.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=[{"role": "user", "content": "invoice"}],
        tools=[{"name": "agent_output", "description": "answer", "input_schema": schema}],
        tool_choice={"type": "tool", "name": "agent_output"},
    )
    assert forced.content[0].name == "agent_output"
    assert Invoice.model_validate(forced.content[0].input).lines == [1]
    overridden = ant.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=[{"role": "user", "content": 'invoice [[json: {"number": "A-1"}]]'}],
        tools=[{"name": "agent_output", "description": "answer", "input_schema": schema}],
        tool_choice={"type": "tool", "name": "agent_output"},
    )
    assert overridden.content[0].input == {"number": "A-1"}
    parsed = ant.messages.parse(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=[{"role": "user", "content": "x"}],
        output_format=Invoice,
    )
    assert parsed.parsed_output == Invoice(number="example", amount=1.0, lines=[1], approved=True)


def test_anthropic_answer_tool_with_any_choice(ant):
    tools = ANTHROPIC_TOOLS + [
        {"name": "agent_output", "description": "answer", "input_schema": Invoice.model_json_schema()}
    ]
    messages = [{"role": "user", "content": "weather invoice"}]
    first = ant.messages.create(
        model="c", max_tokens=50, messages=messages, tools=tools, tool_choice={"type": "any"}
    )
    assert [b.name for b in first.content] == ["forecast"]
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": first.content[0].id, "content": "ok"}],
        },
    ]
    final = ant.messages.create(
        model="c", max_tokens=50, messages=messages, tools=tools, tool_choice={"type": "any"}
    )
    assert final.content[0].name == "agent_output"
    assert final.content[0].input["number"] == "example"


def test_models_endpoint(oai, ant):
    assert "gpt-5-mini" in [m.id for m in oai.models.list()]
    assert "claude-sonnet-4-6" in [m.id for m in ant.models.list()]
