"""The batch engine with the real SDKs against the local server: both providers, sync and async."""

from __future__ import annotations

import asyncio
import json
import time

import anthropic
import openai
import pytest

from airflow_agent_provider.llm.adapters import get_adapter
from airflow_agent_provider.llm.batch import (
    BatchHandle,
    BatchItem,
    BatchLimits,
    BatchNotEndedError,
    RequestOutcome,
    afetch_results,
    afind_submitted,
    aretrieve_batch,
    asubmit_batch,
    cancel_batch,
    fetch_results,
    find_submitted,
    plan_batches,
    retrieve_batch,
    submit_batch,
)
from airflow_agent_provider.llm.types import LLMRequest, Message, ToolSpec

API_KEY = "test-key"
MODELS = {"openai": "gpt-5-mini", "anthropic": "claude-haiku-4-5"}
PROVIDERS = ["openai", "anthropic"]
INVOICE_SCHEMA = {
    "type": "object",
    "properties": {"number": {"type": "string"}, "approved": {"type": "boolean"}},
    "required": ["number", "approved"],
}


def _client(llm, provider: str):
    if provider == "openai":
        return openai.OpenAI(base_url=llm.openai_base_url, api_key=API_KEY, max_retries=0)
    return anthropic.Anthropic(base_url=llm.anthropic_base_url, api_key=API_KEY, max_retries=0)


def _aclient(llm, provider: str):
    if provider == "openai":
        return openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key=API_KEY, max_retries=0)
    return anthropic.AsyncAnthropic(base_url=llm.anthropic_base_url, api_key=API_KEY, max_retries=0)


def _request(provider: str, text: str, **kwargs) -> LLMRequest:
    return LLMRequest(
        provider=provider,
        model=MODELS[provider],
        messages=[Message(role="user", content=text)],
        system="You are the month-end close assistant.",
        max_tokens=200,
        **kwargs,
    )


def _items(provider: str, n: int, prefix: str = "agent") -> list[BatchItem]:
    return [BatchItem(f"{prefix}-{i}", _request(provider, f"Reconcile ledger {i}")) for i in range(n)]


def _submit_one(llm, provider: str, items: list[BatchItem]) -> BatchHandle:
    (planned,) = plan_batches(items)
    return submit_batch(_client(llm, provider), planned)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_round_trip_gives_the_realtime_response(llm, provider):
    items = _items(provider, 3)
    items.append(BatchItem("structured", _request(provider, "Invoice 7", output_schema=INVOICE_SCHEMA)))
    tool = ToolSpec("lookup_vendor", "Find a vendor", {"type": "object", "properties": {}})
    items.append(BatchItem("tools", _request(provider, "Who supplies paper?", tools=[tool])))
    client = _client(llm, provider)
    handle = _submit_one(llm, provider, items)
    assert handle.provider == provider
    assert handle.model == MODELS[provider]
    assert handle.custom_ids == tuple(i.custom_id for i in items)
    assert BatchHandle.from_dict(json.loads(json.dumps(handle.to_dict()))) == handle

    status = retrieve_batch(client, handle)
    assert status.ended
    assert status.total == 5
    results = fetch_results(client, handle, status)
    assert set(results.outcomes) == set(handle.custom_ids)
    assert all(o.kind == "succeeded" for o in results.outcomes.values())

    adapter = get_adapter(provider)
    for item in items:
        kwargs = adapter.build_kwargs(item.request)
        if provider == "openai":
            realtime = adapter.parse(client.chat.completions.create(**kwargs))
        else:
            realtime = adapter.parse(client.messages.create(**kwargs))
        got = results.outcomes[item.custom_id].response
        assert got is not None
        assert got.text == realtime.text
        assert [c.name for c in got.tool_calls] == [c.name for c in realtime.tool_calls]
        assert got.usage == realtime.usage
        assert got.usage.input_tokens > 0
        assert got.provider == provider
    assert json.loads(results.outcomes["structured"].response.text)["approved"] is True
    assert [c.name for c in results.outcomes["tools"].response.tool_calls] == ["lookup_vendor"]
    assert llm.batches_created(provider, MODELS[provider]) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_per_request_failures(llm, provider):
    llm.batch_configure(fail={"agent-1": 500, "agent-2": 400})
    items = _items(provider, 4)
    items[3] = BatchItem("agent-3", _request(provider, "Close the books [[fail:429]]"))
    client = _client(llm, provider)
    results = fetch_results(client, _submit_one(llm, provider, items))
    kinds = {cid: o.kind for cid, o in results.outcomes.items()}
    assert kinds == {"agent-0": "succeeded", "agent-1": "errored", "agent-2": "errored", "agent-3": "errored"}
    failed = results.outcomes["agent-1"]
    assert failed.status_code == 500
    assert failed.retryable
    assert failed.response is None
    assert failed.error
    assert results.outcomes["agent-2"].status_code == 400
    assert not results.outcomes["agent-2"].retryable
    assert results.outcomes["agent-3"].status_code == 429
    assert results.outcomes["agent-3"].retryable
    assert RequestOutcome.from_dict(json.loads(json.dumps(failed.to_dict()))) == failed
    ok = results.outcomes["agent-0"]
    assert RequestOutcome.from_dict(json.loads(json.dumps(ok.to_dict()))) == ok


@pytest.mark.parametrize("provider", PROVIDERS)
def test_expiry_marks_only_unfinished_requests_expired(llm, provider):
    llm.batch_configure(processing_seconds=30, unfinished=["agent-2"], expire_after_seconds=60)
    client = _client(llm, provider)
    handle = _submit_one(llm, provider, _items(provider, 3))
    status = retrieve_batch(client, handle)
    assert status.state == "in_progress"
    with pytest.raises(BatchNotEndedError):
        fetch_results(client, handle, status)
    llm.batch_advance(61)
    status = retrieve_batch(client, handle)
    assert status.ended
    assert status.provider_status in ("expired", "ended")
    assert status.expired == 1
    results = fetch_results(client, handle, status)
    assert results.outcomes["agent-2"].kind == "expired"
    assert results.outcomes["agent-2"].retryable
    assert [o.custom_id for o in results.of_kind("succeeded")] == ["agent-0", "agent-1"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cancel_marks_unrun_requests_cancelled(llm, provider):
    llm.batch_configure(request_seconds=30.0)
    client = _client(llm, provider)
    handle = _submit_one(llm, provider, _items(provider, 3))
    status = cancel_batch(client, handle)
    assert status.ended  # cancel_seconds=0
    results = fetch_results(client, handle)
    kinds = {cid: o.kind for cid, o in results.outcomes.items()}
    assert kinds == {"agent-0": "succeeded", "agent-1": "cancelled", "agent-2": "cancelled"}


def test_openai_failed_batch_errors_every_request(llm):
    client = _client(llm, "openai")
    uploaded = client.files.create(file=("x.jsonl", b"not json\n"), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    handle = BatchHandle("openai", batch.id, "gpt-5-mini", ("a", "b"), time.time(), uploaded.id)
    results = fetch_results(client, handle)
    assert results.status.provider_status == "failed"
    assert {o.kind for o in results.outcomes.values()} == {"errored"}
    assert "JSON" in (results.outcomes["a"].error or "")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_splitting_submits_one_batch_per_chunk(llm, provider):
    items = _items(provider, 7)
    plan = plan_batches(items, BatchLimits(max_requests=3, max_bytes=10_000_000))
    assert [len(p.items) for p in plan] == [3, 3, 1]
    client = _client(llm, provider)
    handles = [submit_batch(client, p) for p in plan]
    assert llm.batches_created(provider, MODELS[provider]) == 3
    outcomes = {}
    for handle in handles:
        outcomes.update(fetch_results(client, handle).outcomes)
    assert sorted(outcomes) == sorted(i.custom_id for i in items)
    assert all(o.succeeded for o in outcomes.values())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_async_round_trip_with_failure_and_expiry(llm, provider):
    llm.batch_configure(fail={"agent-0": 503}, unfinished=["agent-1"], expire_after_seconds=0.3)

    async def run():
        async with _aclient(llm, provider) as client:
            (planned,) = plan_batches(_items(provider, 3))
            handle = await asubmit_batch(client, planned)
            status = await aretrieve_batch(client, handle)
            while not status.ended:
                await asyncio.sleep(0.1)
                status = await aretrieve_batch(client, handle)
            return await afetch_results(client, handle, status)

    results = asyncio.run(run())
    kinds = {cid: o.kind for cid, o in results.outcomes.items()}
    assert kinds == {"agent-0": "errored", "agent-1": "expired", "agent-2": "succeeded"}
    # Anthropic's errored results carry only an error type: 503 comes back as api_error (500).
    assert results.outcomes["agent-0"].status_code == (503 if provider == "openai" else 500)
    assert results.outcomes["agent-0"].retryable
    assert results.outcomes["agent-2"].response.usage.output_tokens > 0
    assert llm.batches_created(provider) == 1


def test_openai_find_submitted_reattaches_by_submission_key(llm):
    client = _client(llm, "openai")
    (planned,) = plan_batches(_items("openai", 2))
    assert find_submitted(client, planned, "run-1-layer-0") is None
    submit_batch(client, planned, submission_key="run-0-layer-0")
    handle = submit_batch(client, planned, metadata={"dag": "erp"}, submission_key="run-1-layer-0")
    submit_batch(client, planned, submission_key="run-2-layer-0")
    found = find_submitted(client, planned, "run-1-layer-0")
    assert found is not None
    assert found.batch_id == handle.batch_id
    assert found.custom_ids == handle.custom_ids
    assert client.batches.retrieve(handle.batch_id).metadata == {
        "dag": "erp",
        "aap_submission": "run-1-layer-0",
    }

    async def afind():
        async with _aclient(llm, "openai") as aclient:
            return await afind_submitted(aclient, planned, "run-0-layer-0")

    assert asyncio.run(afind()) is not None
    (ant_planned,) = plan_batches(_items("anthropic", 1))
    assert find_submitted(_client(llm, "anthropic"), ant_planned, "run-1-layer-0") is None


def test_openai_list_pages_newest_first(llm):
    client = _client(llm, "openai")
    (planned,) = plan_batches(_items("openai", 1))
    ids = [submit_batch(client, planned).batch_id for _ in range(5)]
    first = client.batches.list(limit=2)
    assert [b.id for b in first.data] == ids[::-1][:2]
    assert first.has_more
    assert [b.id for b in client.batches.list(limit=2)] == ids[::-1]
