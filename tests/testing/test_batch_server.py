"""The local server's batch APIs through the real SDKs: wire shapes, timing, failures, expiry, cancel."""

from __future__ import annotations

import asyncio
import json

import anthropic
import openai
import pytest

from tests.testing.conftest import API_KEY


def _openai_file(n: int, model: str = "gpt-5-mini", prefix: str = "r") -> bytes:
    lines = [
        {
            "custom_id": f"{prefix}{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"Reconcile account {i}"}]},
        }
        for i in range(n)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def _anthropic_requests(n: int, model: str = "claude-haiku-4-5") -> list[dict]:
    return [
        {
            "custom_id": f"a{i}",
            "params": {
                "model": model,
                "max_tokens": 50,
                "messages": [{"role": "user", "content": f"Check invoice {i}"}],
            },
        }
        for i in range(n)
    ]


def _openai_batch(oai, content: bytes, **kwargs):
    uploaded = oai.files.create(file=("in.jsonl", content), purpose="batch")
    assert uploaded.purpose == "batch"
    assert uploaded.bytes == len(content)
    return oai.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", **kwargs
    )


def _lines(oai, file_id: str | None) -> dict[str, dict]:
    if file_id is None:
        return {}
    text = oai.files.content(file_id).text
    return {line["custom_id"]: line for line in map(json.loads, text.splitlines())}


def test_openai_round_trip_answers_like_realtime(llm, oai):
    created = _openai_batch(oai, _openai_file(3), metadata={"run": "month-end"})
    assert created.status == "validating"
    assert created.id.startswith("batch_")
    batch = oai.batches.retrieve(created.id)
    assert batch.status == "completed"
    assert batch.request_counts.total == 3
    assert batch.request_counts.completed == 3
    assert batch.metadata == {"run": "month-end"}
    assert batch.error_file_id is None
    out = _lines(oai, batch.output_file_id)
    assert sorted(out) == ["r0", "r1", "r2"]
    body = out["r1"]["response"]["body"]
    assert out["r1"]["response"]["status_code"] == 200
    realtime = oai.chat.completions.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "Reconcile account 1"}]
    )
    assert body["choices"][0]["message"]["content"] == realtime.choices[0].message.content
    assert body["usage"]["prompt_tokens"] == realtime.usage.prompt_tokens
    assert body["usage"]["completion_tokens"] == realtime.usage.completion_tokens
    assert batch.usage.input_tokens == 3 * realtime.usage.prompt_tokens
    assert llm.batches_created("openai", "gpt-5-mini") == 1
    assert llm.stats()["by_path"]["/v1/batches"] == 1


def test_openai_per_request_failure_goes_to_error_file(llm, oai):
    llm.batch_configure(fail={"r2": 500})
    content = _openai_file(3).replace(b"Reconcile account 0", b"Reconcile account 0 [[fail:400]]")
    batch = oai.batches.retrieve(_openai_batch(oai, content).id)
    assert batch.status == "completed"
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 2)
    errors = _lines(oai, batch.error_file_id)
    assert errors["r2"]["response"]["status_code"] == 500
    assert errors["r2"]["response"]["body"]["error"]["type"] == "server_error"
    assert errors["r0"]["response"]["status_code"] == 400
    assert list(_lines(oai, batch.output_file_id)) == ["r1"]


def test_openai_processing_delay_then_expiry_marks_unfinished(llm, oai):
    llm.batch_configure(processing_seconds=30, unfinished=["r1"], expire_after_seconds=60)
    created = _openai_batch(oai, _openai_file(3))
    assert oai.batches.retrieve(created.id).status == "in_progress"
    llm.batch_advance(40)
    running = oai.batches.retrieve(created.id)
    assert running.status == "in_progress"
    assert running.request_counts.completed == 2
    llm.batch_advance(30)
    batch = oai.batches.retrieve(created.id)
    assert batch.status == "expired"
    assert batch.expired_at is not None
    errors = _lines(oai, batch.error_file_id)
    assert errors["r1"]["response"] is None
    assert errors["r1"]["error"]["code"] == "batch_expired"
    assert sorted(_lines(oai, batch.output_file_id)) == ["r0", "r2"]


def test_openai_cancel(llm, oai):
    llm.batch_configure(processing_seconds=0.0, request_seconds=500.0, cancel_seconds=60)
    created = _openai_batch(oai, _openai_file(3))
    cancelling = oai.batches.cancel(created.id)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at is not None
    llm.batch_advance(61)
    batch = oai.batches.retrieve(created.id)
    assert batch.status == "cancelled"
    assert list(_lines(oai, batch.output_file_id)) == ["r0"]
    errors = _lines(oai, batch.error_file_id)
    assert {e["error"]["code"] for e in errors.values()} == {"batch_cancelled"}
    assert sorted(errors) == ["r1", "r2"]


def test_openai_invalid_file_fails_the_batch(llm, oai):
    content = _openai_file(2) + _openai_file(1, prefix="x", model="gpt-4o-mini") + _openai_file(1)
    batch = oai.batches.retrieve(_openai_batch(oai, content).id)
    assert batch.status == "failed"
    codes = {e.code for e in batch.errors.data}
    assert codes == {"duplicate_custom_id", "mismatched_model"}
    with pytest.raises(openai.BadRequestError):
        oai.batches.create(
            input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.NotFoundError):
        oai.batches.retrieve("batch_nope")


def test_openai_batch_needs_a_key(llm):
    client = openai.OpenAI(base_url=llm.openai_base_url, api_key="invalid-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.files.create(file=("in.jsonl", _openai_file(1)), purpose="batch")


def test_anthropic_round_trip_failures_and_counts(llm, ant):
    llm.batch_configure(fail={"a1": 529})
    created = ant.messages.batches.create(requests=_anthropic_requests(3))
    assert created.processing_status == "in_progress"
    assert created.id.startswith("msgbatch_")
    assert created.results_url is None
    batch = ant.messages.batches.retrieve(created.id)
    assert batch.processing_status == "ended"
    counts = batch.request_counts
    assert (counts.succeeded, counts.errored, counts.processing) == (2, 1, 0)
    results = {r.custom_id: r.result for r in ant.messages.batches.results(created.id)}
    assert results["a0"].type == "succeeded"
    assert results["a0"].message.content[0].text == "[claude-haiku-4-5] Check invoice 0"
    assert results["a0"].message.usage.output_tokens > 0
    assert results["a1"].type == "errored"
    assert results["a1"].error.error.type == "overloaded_error"
    assert llm.batches_created("anthropic") == 1
    assert llm.batch_stats()["answered_requests"] == 3


def test_anthropic_counts_stay_processing_until_ended_then_expire(llm, ant):
    llm.batch_configure(unfinished=["a0"], expire_after_seconds=60)
    created = ant.messages.batches.create(requests=_anthropic_requests(2))
    running = ant.messages.batches.retrieve(created.id)
    assert running.processing_status == "in_progress"
    assert (running.request_counts.processing, running.request_counts.succeeded) == (2, 0)
    with pytest.raises(anthropic.AnthropicError):
        list(ant.messages.batches.results(created.id))
    llm.batch_advance(61)
    batch = ant.messages.batches.retrieve(created.id)
    assert batch.processing_status == "ended"
    assert (batch.request_counts.expired, batch.request_counts.succeeded) == (1, 1)
    results = {r.custom_id: r.result.type for r in ant.messages.batches.results(created.id)}
    assert results == {"a0": "expired", "a1": "succeeded"}


def test_anthropic_cancel_and_validation(llm, ant):
    llm.batch_configure(processing_seconds=10.0)
    created = ant.messages.batches.create(requests=_anthropic_requests(2))
    canceling = ant.messages.batches.cancel(created.id)
    assert canceling.processing_status == "ended"  # cancel_seconds=0: settles at once
    assert canceling.request_counts.canceled == 2
    assert {r.result.type for r in ant.messages.batches.results(created.id)} == {"canceled"}
    duplicate = _anthropic_requests(1) + _anthropic_requests(1)
    with pytest.raises(anthropic.BadRequestError):
        ant.messages.batches.create(requests=duplicate)
    bad_id = [{"custom_id": "has space", "params": _anthropic_requests(1)[0]["params"]}]
    with pytest.raises(anthropic.BadRequestError):
        ant.messages.batches.create(requests=bad_id)
    with pytest.raises(anthropic.NotFoundError):
        ant.messages.batches.retrieve("msgbatch_nope")


def test_async_clients_and_reset(llm):
    async def run() -> tuple[str, str]:
        oai = openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key=API_KEY, max_retries=0)
        ant = anthropic.AsyncAnthropic(base_url=llm.anthropic_base_url, api_key=API_KEY, max_retries=0)
        async with oai, ant:
            return await exchange(oai, ant)

    async def exchange(oai, ant) -> tuple[str, str]:
        uploaded = await oai.files.create(file=("in.jsonl", _openai_file(2)), purpose="batch")
        created = await oai.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        batch = await oai.batches.retrieve(created.id)
        content = await oai.files.content(batch.output_file_id)
        message_batch = await ant.messages.batches.create(requests=_anthropic_requests(1))
        await ant.messages.batches.retrieve(message_batch.id)
        decoder = await ant.messages.batches.results(message_batch.id)
        types = [entry.result.type async for entry in decoder]
        return content.text.splitlines()[0], ",".join(types)

    first_line, types = asyncio.run(run())
    assert json.loads(first_line)["response"]["status_code"] == 200
    assert types == "succeeded"
    assert llm.batch_stats()["created"] == {"openai": {"gpt-5-mini": 1}, "anthropic": {"claude-haiku-4-5": 1}}
    llm.batch_configure(processing_seconds=5)
    llm.reset()
    stats = llm.batch_stats()
    assert stats["created"] == {}
    assert stats["batches"] == []
    assert llm.batch_configure()["processing_seconds"] == 0.0


def test_batch_config_rejects_unknown_fields_and_codes(llm):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError):
        llm.batch_configure(procesing_seconds=1)
    with pytest.raises(urllib.error.HTTPError):
        llm.batch_configure(fail={"r0": 299})


@pytest.mark.parametrize("payload", [{}, {"seconds": -1}, {"seconds": "5"}, {"seconds": True}, [5]])
def test_batch_clock_rejects_anything_but_seconds_forward(llm, payload):
    import urllib.error

    before = llm.batch_advance(0)
    with pytest.raises(urllib.error.HTTPError) as raised:
        llm._batch_admin("POST", "/_admin/batch/advance", payload)
    assert raised.value.code == 400
    assert "seconds" in json.loads(raised.value.read())["error"]
    assert llm.batch_advance(0) - before < 5  # the clock did not move


def test_batch_clock_resets_with_the_server(llm, oai):
    llm.batch_configure(processing_seconds=100)
    llm.batch_advance(3600)
    llm.reset()
    llm.batch_configure(processing_seconds=100)
    created = _openai_batch(oai, _openai_file(1))
    assert oai.batches.retrieve(created.id).status == "in_progress"
