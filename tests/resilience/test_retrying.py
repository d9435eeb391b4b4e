"""In-call retries against the local server: what is retried, how long it waits, what is raised."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import anthropic
import openai
import pytest

from airflow_agent_provider.resilience.classify import classify
from airflow_agent_provider.resilience.retrying import (
    CallRetryPolicy,
    RetryEvent,
    acall_with_retries,
    call_with_retries,
    compute_backoff,
)
from tests.resilience.sdk_calls import ANTHROPIC_MODEL, call_openai, openai_client

FAST = CallRetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=5)


def test_two_server_errors_then_success(llm):
    client = openai_client(llm.openai_base_url)
    events: list[RetryEvent] = []

    text = call_with_retries(
        lambda: call_openai(client, "close the books [[fail:500 x2]]"), FAST, on_retry=events.append
    )

    assert "close the books" in text
    assert llm.stats()["requests"] == 3
    assert llm.stats()["by_status"] == {"500": 2, "200": 1}
    assert [(e.attempt, e.info.reason) for e in events] == [(1, "server_error"), (2, "server_error")]


def test_async_twin_with_anthropic(llm):
    client = anthropic.AsyncAnthropic(base_url=llm.anthropic_base_url, api_key="k", max_retries=0)

    async def call() -> str:
        reply = await client.messages.create(
            model=ANTHROPIC_MODEL,
            max_tokens=16,
            messages=[{"role": "user", "content": "count stock [[fail:529 x2]]"}],
        )
        return reply.content[0].text

    assert "count stock" in asyncio.run(acall_with_retries(call, FAST))
    assert llm.stats()["by_status"] == {"529": 2, "200": 1}


def test_retry_after_is_honoured(llm):
    client = openai_client(llm.openai_base_url)
    events: list[RetryEvent] = []
    policy = CallRetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=5)

    call_with_retries(lambda: call_openai(client, "pay run [[fail:429 x1]]"), policy, on_retry=events.append)

    assert [e.delay_s for e in events] == [1.0]  # max(tiny backoff, retry-after 1)
    first, second = llm.stats()["log"]
    # The second request reached the server at least the provider's second after the 429 left it.
    assert (first["status"], second["status"]) == (429, 200)
    assert second["t_start"] - first["t_end"] >= 0.99


def test_permanent_error_is_raised_at_once(llm):
    client = openai_client(llm.openai_base_url, api_key="invalid-key")
    events: list[RetryEvent] = []

    with pytest.raises(openai.AuthenticationError):
        call_with_retries(lambda: call_openai(client, "hi"), FAST, on_retry=events.append)

    assert llm.stats()["requests"] == 1
    assert events == []


def test_out_of_attempts_raises_the_original_error(llm):
    client = openai_client(llm.openai_base_url)
    with pytest.raises(openai.InternalServerError) as caught:
        call_with_retries(lambda: call_openai(client, "hi [[fail:503]]"), CallRetryPolicy(2, 0.01, 1))
    assert caught.value.status_code == 503
    assert llm.stats()["requests"] == 2


def test_long_retry_after_is_left_to_the_task_retry(llm):
    llm.configure(retry_after="60")
    client = openai_client(llm.openai_base_url)
    with pytest.raises(openai.RateLimitError) as caught:
        call_with_retries(lambda: call_openai(client, "hi [[fail:429]]"), CallRetryPolicy(5, 0.01, 10))
    assert llm.stats()["requests"] == 1
    assert classify(caught.value).retry_after_s == 60


def test_policy_from_mapping():
    policy = CallRetryPolicy.from_mapping(
        {"max_attempts": 4, "base_delay": "500ms", "max_delay": timedelta(minutes=1), "jitter": False}
    )
    assert policy == CallRetryPolicy(
        max_attempts=4, base_delay_s=0.5, max_delay_s=60, exponential=True, jitter=False
    )
    assert CallRetryPolicy.from_mapping(None) == CallRetryPolicy()
    with pytest.raises(ValueError, match="unknown call retry setting 'max_attempt'"):
        CallRetryPolicy.from_mapping({"max_attempt": 2})
    with pytest.raises(ValueError, match="base_delay"):
        CallRetryPolicy.from_mapping({"base_delay": "soon"})


def test_backoff_grows_and_is_capped():
    assert [compute_backoff(n, base_delay_s=1, max_delay_s=5, jitter=False) for n in (1, 2, 3, 4)] == [
        1,
        2,
        4,
        5,
    ]
    assert compute_backoff(3, base_delay_s=1, max_delay_s=5, exponential=False, jitter=False) == 1
    for n in range(1, 8):
        assert 2 ** (n - 1) / 2 <= compute_backoff(n, base_delay_s=1, max_delay_s=1000) <= 2 ** (n - 1)
