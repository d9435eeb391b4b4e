"""Batch lines and splitting: what is sent, and how requests are cut by the providers' limits."""

from __future__ import annotations

import json

import pytest

from airflow_agent_provider.llm import anthropic_adapter, openai_adapter
from airflow_agent_provider.llm.batch import (
    PROVIDER_LIMITS,
    BatchItem,
    BatchLimits,
    BatchTooLargeError,
    plan_batches,
    poll_delay,
    provider_limits,
)
from airflow_agent_provider.llm.batch.lines import (
    anthropic_request,
    enqueued_tokens,
    entry_size,
    jsonl,
    openai_line,
)
from airflow_agent_provider.llm.types import LLMRequest, Message


def _req(provider: str = "openai", model: str = "gpt-5-mini", text: str = "hello", **kw) -> LLMRequest:
    return LLMRequest(provider=provider, model=model, messages=[Message(role="user", content=text)], **kw)


def test_lines_are_the_realtime_bodies_without_call_options():
    request = _req(timeout=30.0, extra_headers={"x-llm-fail": "500"}, system="sys")
    line = openai_line(BatchItem("a-1", request))
    expected = openai_adapter.build_kwargs(request)
    del expected["timeout"], expected["extra_headers"]
    assert line == {"custom_id": "a-1", "method": "POST", "url": "/v1/chat/completions", "body": expected}
    ant_request = _req("anthropic", "claude-haiku-4-5", output_schema={"type": "object"})
    entry = anthropic_request(BatchItem("b", ant_request))
    assert entry == {"custom_id": "b", "params": anthropic_adapter.build_kwargs(ant_request)}
    data = jsonl([BatchItem("a-1", request), BatchItem("a-2", request)])
    assert [json.loads(x)["custom_id"] for x in data.decode().splitlines()] == ["a-1", "a-2"]
    assert entry_size(BatchItem("a-1", request)) == len(data) // 2


def test_custom_ids_must_suit_both_apis():
    with pytest.raises(ValueError, match="custom_id"):
        BatchItem("has space", _req())
    with pytest.raises(ValueError, match="custom_id"):
        BatchItem("x" * 65, _req())
    with pytest.raises(ValueError, match="twice"):
        plan_batches([BatchItem("a", _req()), BatchItem("a", _req())])


def test_published_limits():
    assert PROVIDER_LIMITS["openai"] == BatchLimits(50_000, 200_000_000)
    assert PROVIDER_LIMITS["anthropic"] == BatchLimits(100_000, 256_000_000)
    assert provider_limits("openai", 1000).max_enqueued_tokens == 1000
    with pytest.raises(ValueError, match="provider"):
        provider_limits("mistral")
    with pytest.raises(ValueError, match="at least 1"):
        BatchLimits(0, 10)


def test_groups_by_provider_and_model_and_keeps_order():
    items = [
        BatchItem("o1", _req()),
        BatchItem("a1", _req("anthropic", "claude-haiku-4-5")),
        BatchItem("o2", _req(model="gpt-4o-mini")),
        BatchItem("o3", _req()),
    ]
    plan = plan_batches(items)
    assert [(p.provider, p.model, p.custom_ids) for p in plan] == [
        ("openai", "gpt-5-mini", ("o1", "o3")),
        ("anthropic", "claude-haiku-4-5", ("a1",)),
        ("openai", "gpt-4o-mini", ("o2",)),
    ]


def test_split_by_request_count_bytes_and_token_cap():
    items = [BatchItem(f"r{i}", _req(text="x" * 400)) for i in range(10)]
    size, tokens = entry_size(items[0]), enqueued_tokens(items[0])
    assert tokens >= 100  # 400 characters of prompt at four per token, plus the JSON around it

    by_count = plan_batches(items, BatchLimits(max_requests=4, max_bytes=10**9))
    assert [len(p.items) for p in by_count] == [4, 4, 2]

    by_bytes = plan_batches(items, BatchLimits(max_requests=100, max_bytes=3 * size + 64))
    assert [len(p.items) for p in by_bytes] == [3, 3, 3, 1]
    assert all(p.bytes <= 3 * size for p in by_bytes)

    by_tokens = plan_batches(items, max_enqueued_tokens=5 * tokens)
    assert [len(p.items) for p in by_tokens] == [5, 5]
    assert [p.enqueued_tokens for p in by_tokens] == [5 * tokens, 5 * tokens]
    assert [c for p in by_tokens for c in p.custom_ids] == [i.custom_id for i in items]


def test_a_request_larger_than_a_batch_is_an_error():
    big = BatchItem("big", _req(text="y" * 5000))
    with pytest.raises(BatchTooLargeError, match="bytes"):
        plan_batches([big], BatchLimits(max_requests=10, max_bytes=1000))
    with pytest.raises(BatchTooLargeError, match="enqueued-token"):
        plan_batches([big], max_enqueued_tokens=100)


def test_poll_delay_backs_off_to_a_ceiling():
    delays = [poll_delay(n) for n in range(12)]
    assert delays[0] == 30.0
    assert delays[1] == 45.0
    assert delays == sorted(delays)
    assert delays[-1] == 600.0
    assert poll_delay(3, first=1.0, cap=2.0) == 2.0
