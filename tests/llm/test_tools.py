from __future__ import annotations

import json

import pytest

from airflow_agent_provider.llm.adapter_common import INVALID_ARGUMENTS_KEY, parse_tool_arguments
from airflow_agent_provider.llm.tools import (
    MAX_ERROR_CHARS,
    MAX_RESULT_CHARS,
    Tool,
    ToolImportError,
    ToolRegistry,
    import_callable,
)
from airflow_agent_provider.llm.types import ToolCall

P = "tests.llm.sample_tools"


def test_schema_from_type_hints_and_docstring():
    tool = Tool.from_path("lookup_invoice", f"{P}.lookup_invoice")
    assert tool.spec.description == "Look up an ERP invoice by its number."
    params = tool.spec.parameters
    assert params["type"] == "object"
    assert params["properties"]["number"] == {"type": "string"}
    assert params["properties"]["include_lines"] == {"type": "boolean", "default": False}
    assert params["required"] == ["number"]
    assert params["additionalProperties"] is False


def test_nested_model_argument_schema_and_call():
    tool = Tool.from_path("make_invoice", f"{P}:make_invoice")
    assert "$defs" in tool.spec.parameters
    text, ok = tool.run({"invoice": {"number": "A-1", "amount": "3.5"}})
    assert ok
    assert json.loads(text) == {"number": "A-1", "amount": 3.5}


def test_call_validates_and_serialises():
    tool = Tool.from_path("add", f"{P}.add")
    assert tool.call({"a": 2, "b": "3"}) == "5"
    text, ok = tool.run({"a": "two", "b": 3})
    assert not ok
    assert "invalid arguments" in text
    assert "a:" in text
    text, ok = tool.run({"a": 1, "b": 2, "c": 3})
    assert not ok
    assert "c: Extra inputs are not permitted" in text


def test_exception_in_tool_becomes_bounded_error(caplog):
    tool = Tool.from_path("explode", f"{P}.explode")
    text, ok = tool.run({"reason": "y" * 5000})
    assert not ok
    assert text.startswith("ERROR calling tool 'explode': RuntimeError: tool exploded")
    assert len(text) <= MAX_ERROR_CHARS + 60
    assert "tool exploded" in caplog.text


def test_large_result_is_truncated():
    text, ok = Tool.from_path("huge", f"{P}.huge").run({})
    assert ok
    assert len(text) < MAX_RESULT_CHARS + 100
    assert "truncated" in text


def test_malformed_json_arguments_become_an_error_for_the_model():
    arguments = parse_tool_arguments('{"a": 1,')
    assert INVALID_ARGUMENTS_KEY in arguments
    text, ok = Tool.from_path("add", f"{P}.add").run(arguments)
    assert not ok
    assert "not valid JSON" in text
    assert parse_tool_arguments("[1, 2]")[INVALID_ARGUMENTS_KEY]["error"].startswith(
        "arguments must be a JSON object"
    )
    assert parse_tool_arguments("") == {}


def test_registry_allow_list_only():
    registry = ToolRegistry.from_mapping({"add": f"{P}.add"})
    assert [s.name for s in registry.specs] == ["add"]
    result = registry.run(ToolCall(id="1", name="lookup_invoice", arguments={"number": "x"}))
    assert not result.ok
    assert "unknown tool 'lookup_invoice'" in result.content
    assert "['add']" in result.content
    assert registry.run(ToolCall(id="2", name="add", arguments={"a": 1, "b": 1})).content == "2"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nodots", "must look like"),
        (f"{P}.missing", "cannot import tool"),
        ("no_such_pkg_xyz.mod.fn", "cannot import tool"),
        (f"{P}.NOT_CALLABLE", "is not callable"),
    ],
)
def test_bad_paths_are_rejected(path, message):
    with pytest.raises(ToolImportError, match=message):
        import_callable(path)


def test_tool_must_be_a_path_and_name_valid():
    with pytest.raises(ToolImportError, match="dotted path string"):
        ToolRegistry.from_mapping({"add": len})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="tool name"):
        Tool("bad name!", len)
