"""Unit tests of the marker language and the schema instance generator (no server involved)."""

from __future__ import annotations

import json

from airflow_agent_provider.testing.schema_instance import minimal_instance
from airflow_agent_provider.testing.scripting import (
    Conversation,
    Turn,
    decide_reply,
    parse_script,
    strip_markers,
)


def test_markers_are_parsed():
    script = parse_script(
        'go [[reply: done]] [[tool:lookup {"ids": [[1, 2]], "q": "x"}]] [[tool:other]] '
        "[[fail:429 x2]] [[latency:0.25]] [[usage: in=100 out=20 cached=10]] [[json: {bad]]"
    )
    assert script.reply == "done"
    assert script.tools == [("lookup", {"ids": [[1, 2]], "q": "x"}), ("other", None)]
    assert script.fail is not None
    assert (script.fail.code, script.fail.times) == (429, 2)
    assert script.fail.marker == "[[fail:429 x2]]"
    assert script.latency == 0.25
    assert script.usage == {"in": 100, "out": 20, "cached": 10}
    assert script.json_text == "{bad"


def test_json_marker_keeps_nested_brackets_and_unknown_fail_code_is_ignored():
    script = parse_script('[[json: {"a": [[1]]}]] [[fail:418]]')
    assert json.loads(script.json_text) == {"a": [[1]]}
    assert script.fail is None


def test_strip_markers_keeps_plain_text():
    assert strip_markers("Summarise [[fail:500 x2]] the  ledger [[latency:1]]") == "Summarise the ledger"


def test_schema_instance_is_minimal_and_valid():
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "minimum": 18},
            "score": {"type": "number"},
            "ok": {"type": "boolean"},
            "dept": {"enum": ["HR", "Finance"]},
            "kind": {"const": "employee"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "manager": {"$ref": "#/$defs/Person"},
            "note": {"anyOf": [{"type": "null"}, {"type": "string", "format": "date"}]},
            "optional": {"type": "string"},
        },
        "required": ["name", "age", "score", "ok", "dept", "kind", "tags", "manager", "note"],
        "$defs": {
            "Person": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}
        },
    }
    assert minimal_instance(schema) == {
        "name": "example",
        "age": 18,
        "score": 1.0,
        "ok": True,
        "dept": "HR",
        "kind": "employee",
        "tags": ["example"],
        "manager": {"id": 1},
        "note": "2024-01-01",
    }


def _conv(**kwargs) -> Conversation:
    return Conversation(model="m", turns=[Turn("user", "hello")], input_chars=40, **kwargs)


def test_answer_tool_is_called_after_work_tools():
    tools = {
        "lookup": {"type": "object"},
        "agent_output": {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}},
    }
    first = decide_reply(_conv(tools=tools, tool_choice="required"), parse_script("hello"))
    assert [name for name, _ in first.tool_calls] == ["lookup"]
    conv = _conv(tools=tools, tool_choice="required")
    conv.turns += [Turn("assistant"), Turn("tool", "42", tool_name="lookup")]
    final = decide_reply(conv, parse_script("hello"))
    assert final.tool_calls == [("agent_output", {"a": "example"})]


def test_usage_estimate_and_override():
    reply = decide_reply(_conv(), parse_script("hello"))
    assert reply.text == "[m] hello"
    assert (reply.input_tokens, reply.output_tokens, reply.cached_tokens) == (10, 3, 0)
    reply = decide_reply(_conv(), parse_script("[[usage: in=7 cached=3]]"))
    assert (reply.input_tokens, reply.cached_tokens) == (7, 3)
