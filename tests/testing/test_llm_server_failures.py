"""Failure injection: every code maps to the SDK's own exception class, in each API's error format."""

from __future__ import annotations

import asyncio
import time

import anthropic
import httpx
import openai
import pytest

OPENAI_ERRORS = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    408: openai.APIStatusError,
    429: openai.RateLimitError,
    500: openai.InternalServerError,
    503: openai.InternalServerError,
    529: openai.InternalServerError,
}
ANTHROPIC_ERRORS = {
    400: (anthropic.BadRequestError, "invalid_request_error"),
    401: (anthropic.AuthenticationError, "authentication_error"),
    403: (anthropic.PermissionDeniedError, "permission_error"),
    404: (anthropic.NotFoundError, "not_found_error"),
    408: (anthropic.RequestTimeoutError, "timeout_error"),
    429: (anthropic.RateLimitError, "rate_limit_error"),
    500: (anthropic.InternalServerError, "api_error"),
    503: (anthropic.ServiceUnavailableError, "api_error"),
    529: (anthropic.OverloadedError, "overloaded_error"),
}


def _ask_openai(client: openai.OpenAI, text: str, **kwargs):
    return client.chat.completions.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": text}], **kwargs
    )


def _ask_anthropic(client: anthropic.Anthropic, text: str, **kwargs):
    return client.messages.create(
        model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": text}], **kwargs
    )


@pytest.mark.parametrize("code", sorted(OPENAI_ERRORS))
def test_openai_error_classes(oai, code):
    with pytest.raises(OPENAI_ERRORS[code]) as info:
        _ask_openai(oai, f"[[fail:{code}]]")
    assert info.value.status_code == code
    assert set(info.value.body) >= {"message", "type", "param", "code"}
    assert info.value.response.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("code", sorted(ANTHROPIC_ERRORS))
def test_anthropic_error_classes(ant, code):
    exc_class, err_type = ANTHROPIC_ERRORS[code]
    with pytest.raises(exc_class) as info:
        _ask_anthropic(ant, f"[[fail:{code}]]")
    assert type(info.value) is exc_class
    assert info.value.body["type"] == "error"
    assert info.value.body["error"]["type"] == err_type
    assert info.value.response.headers["request-id"].startswith("req_")


def test_rate_limit_carries_retry_after_and_zero_remaining(llm, oai, ant):
    llm.configure(retry_after="7")
    with pytest.raises(openai.RateLimitError) as info:
        _ask_openai(oai, "[[fail:429]]")
    headers = info.value.response.headers
    assert headers["retry-after"] == "7"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-remaining-tokens"] == "0"
    with pytest.raises(anthropic.RateLimitError) as ainfo:
        _ask_anthropic(ant, "[[fail:429]]")
    assert ainfo.value.response.headers["retry-after"] == "7"
    assert ainfo.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_fail_x2_counts_per_marker_and_conversation(llm, oai):
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            _ask_openai(oai, "report A [[fail:500 x2]]")
    assert _ask_openai(oai, "report A [[fail:500 x2]]").choices[0].message.content == "[gpt-5-mini] report A"
    with pytest.raises(openai.InternalServerError):  # another conversation has its own counter
        _ask_openai(oai, "report B [[fail:500 x2]]")
    llm.reset()
    with pytest.raises(openai.InternalServerError):  # reset clears the counters
        _ask_openai(oai, "report A [[fail:500 x2]]")


def test_authentication(llm):
    bad = openai.OpenAI(base_url=llm.openai_base_url, api_key="invalid-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        _ask_openai(bad, "hi")
    bad_ant = anthropic.Anthropic(base_url=llm.anthropic_base_url, api_key="invalid-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        _ask_anthropic(bad_ant, "hi")
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    missing = httpx.post(llm.url + "/v1/messages", json=body)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    assert (
        httpx.post(llm.url + "/v1/messages", json=body, headers={"x-api-key": "anything"}).status_code == 200
    )


def test_header_injection(oai, ant):
    with pytest.raises(anthropic.OverloadedError):
        _ask_anthropic(ant, "hi", extra_headers={"x-llm-fail": "529"})
    with pytest.raises(openai.RateLimitError):
        _ask_openai(oai, "hi", extra_headers={"x-llm-fail": "429"})
    started = time.monotonic()
    _ask_openai(oai, "hi", extra_headers={"x-llm-latency": "0.3"})
    assert time.monotonic() - started >= 0.3


def test_latency_overlaps_concurrent_requests(llm):
    async def run() -> float:
        client = openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="k", max_retries=0)
        started = time.monotonic()
        await asyncio.gather(
            *(
                client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": f"{i} [[latency:0.5]]"}]
                )
                for i in range(3)
            )
        )
        return time.monotonic() - started

    elapsed = asyncio.run(run())
    assert 0.5 <= elapsed < 1.2
    stats = llm.stats()
    assert stats["max_in_flight"] == 3
    assert stats["in_flight"] == 0


def _statuses(client: openai.OpenAI, count: int) -> list[int]:
    out = []
    for i in range(count):
        try:
            _ask_openai(client, f"q{i}")
            out.append(200)
        except openai.APIStatusError as exc:
            out.append(exc.status_code)
    return out


def test_fail_rate_is_reproducible_with_a_seed(llm, oai):
    llm.configure(fail_rate=0.5, fail_mix=[500, 429], seed=42)
    first = _statuses(oai, 12)
    llm.configure(seed=42)
    assert _statuses(oai, 12) == first
    assert {200, 500, 429} <= set(first)
    llm.configure(fail_rate=1.0, fail_mix=["slow"], slow_seconds=0.2)
    started = time.monotonic()
    _ask_openai(oai, "slow one")
    assert time.monotonic() - started >= 0.2
