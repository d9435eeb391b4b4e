"""The agent result: one typed, versioned record, read back from every form it is stored in."""

from __future__ import annotations

import json

import pytest

from airflow_agent_provider.results import AGENT_RESULT_VERSION, AgentResult

FULL = {
    "status": "success",
    "text": '{"n": 1}',
    "output": {"n": 1},
    "provider": "openai",
    "model": "gpt-5-mini",
    "usage": {"input_tokens": 12, "output_tokens": 3, "cached_input_tokens": 0},
    "cost_usd": 0.0001,
    "cost_known": True,
    "rounds": 2,
    "tool_calls": [{"name": "lookup", "arguments": {"q": "x"}, "ok": True}],
    "latency_s": 0.5,
    "request_ids": ["req-1", "req-2"],
    "requests": 3,
    "wait_s": 0.0,
    "answered_by": "anthropic/claude-sonnet-4-5",
    "fallbacks_used": [{"round": 2, "target": "anthropic/claude-sonnet-4-5", "attempts": [{"n": 1}]}],
    "finish_reason": "stop",
    "stopped": None,
    "task_id": "M.a",
    "agent": {"module": "M", "agent": "a"},
    "iterations": 1,
    "version": 1,
}


def test_a_full_record_round_trips_through_xcom_unchanged():
    result = AgentResult.from_xcom(FULL)
    assert result is not None
    assert result.to_dict() == FULL
    assert list(result.to_dict())[:5] == ["status", "text", "output", "provider", "model"]
    assert result.fallbacks_used[0].target == "anthropic/claude-sonnet-4-5"
    assert result.tool_calls[0].name == "lookup"
    assert result.usage.input_tokens == 12


def test_the_triggerers_json_string_and_records_written_before_version_existed():
    before = {k: v for k, v in FULL.items() if k != "version"}
    from_string = AgentResult.from_xcom(json.dumps(before))
    assert from_string is not None
    assert from_string.version == AGENT_RESULT_VERSION
    assert from_string.to_dict() == FULL
    assert AgentResult.from_xcom(None) is None


def test_unreadable_values_are_errors_not_silent_defaults():
    with pytest.raises(ValueError, match="version 99"):
        AgentResult.from_xcom({**FULL, "version": 99})
    with pytest.raises(ValueError, match="JSON object"):
        AgentResult.from_xcom("a plain string some other task returned")
    with pytest.raises(ValueError, match="JSON object"):
        AgentResult.from_xcom([FULL])
    with pytest.raises(ValueError, match="status"):
        AgentResult.from_xcom({**FULL, "status": "exploded"})


def test_partial_records_dump_only_what_was_written():
    skip = AgentResult.skipped("condition 'x' was false", task_id="M.a", agent={"module": "M"}, map_index=2)
    assert skip.to_dict() == {
        "status": "skipped",
        "text": "",
        "output": None,
        "reason": "condition 'x' was false",
        "skip_reason": "condition 'x' was false",
        "task_id": "M.a",
        "agent": {"module": "M"},
        "map_index": 2,
        "version": 1,
    }
    failed = AgentResult.failed("AirflowSkipException: upstream gone")
    assert failed.to_dict() == {
        "status": "failed",
        "agent_error": "AirflowSkipException: upstream gone",
        "version": 1,
    }
    assert failed.own_reason == "upstream gone"


def test_answer_is_the_output_where_written_else_the_text():
    assert AgentResult(text="t").answer == "t"
    assert AgentResult(text="t", output=None).answer is None
    assert AgentResult(text="t", output={"a": 1}).answer == {"a": 1}
    assert AgentResult().answer is None


def test_unknown_keys_of_newer_writers_survive_a_round_trip():
    newer = {**FULL, "reasoning_tokens": 7}
    result = AgentResult.from_xcom(newer)
    assert result is not None
    assert result.to_dict() == newer


def test_the_control_flow_helpers_write_and_decode_the_same_model():
    from airflow_agent_provider.operators.control_flow import decode_agent_xcom, skip_record

    record = skip_record("no items", task_id="M.b", agent={"module": "M"})
    assert record == AgentResult.skipped("no items", task_id="M.b", agent={"module": "M"}).to_dict()
    assert decode_agent_xcom([json.dumps(record), "plain"]) == [record, "plain"]
    assert decode_agent_xcom('{"not": "a result"}') == '{"not": "a result"}'
