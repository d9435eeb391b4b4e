"""Classification of real SDK exceptions produced by real HTTP responses of the local server."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import anthropic
import httpx
import openai
import pytest

from airflow_agent_provider.cost.budget import BudgetExceeded
from airflow_agent_provider.resilience.breaker import CircuitOpenError
from airflow_agent_provider.resilience.classify import (
    ClassifiedError,
    classify,
    classify_event,
    error_event,
    parse_go_duration,
    retry_after_from_headers,
)
from tests.resilience.sdk_calls import (
    anthropic_client,
    call_anthropic,
    call_openai,
    closed_port,
    openai_client,
    raised_by,
)

# status -> (kind, reason, openai class, anthropic class)
TABLE = [
    (429, "transient", "rate_limited", openai.RateLimitError, anthropic.RateLimitError),
    (500, "transient", "server_error", openai.InternalServerError, anthropic.InternalServerError),
    (502, "transient", "server_error", openai.InternalServerError, anthropic.InternalServerError),
    (503, "transient", "server_error", openai.InternalServerError, anthropic.ServiceUnavailableError),
    (504, "transient", "server_error", openai.InternalServerError, anthropic.GatewayTimeoutError),
    (529, "transient", "overloaded", openai.InternalServerError, anthropic.OverloadedError),
    (408, "transient", "request_timeout", openai.APIStatusError, anthropic.RequestTimeoutError),
    (409, "transient", "conflict", openai.ConflictError, anthropic.ConflictError),
    (400, "permanent", "bad_request", openai.BadRequestError, anthropic.BadRequestError),
    (401, "permanent", "authentication", openai.AuthenticationError, anthropic.AuthenticationError),
    (403, "permanent", "permission_denied", openai.PermissionDeniedError, anthropic.PermissionDeniedError),
    (404, "permanent", "not_found", openai.NotFoundError, anthropic.NotFoundError),
    (413, "permanent", "request_too_large", openai.APIStatusError, anthropic.ContentTooLargeError),
    (422, "permanent", "unprocessable", openai.UnprocessableEntityError, anthropic.UnprocessableEntityError),
]


def _sdk_error(llm, provider: str, text: str, **client_kwargs) -> BaseException:
    if provider == "openai":
        return raised_by(call_openai, openai_client(llm.openai_base_url, **client_kwargs), text)
    return raised_by(call_anthropic, anthropic_client(llm.anthropic_base_url, **client_kwargs), text)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(("status", "kind", "reason", "openai_cls", "anthropic_cls"), TABLE)
def test_status_errors_from_real_responses(llm, provider, status, kind, reason, openai_cls, anthropic_cls):
    exc = _sdk_error(llm, provider, f"hello [[fail:{status}]]")
    assert isinstance(exc, openai_cls if provider == "openai" else anthropic_cls)

    info = classify(exc)

    assert (info.kind, info.reason, info.status_code, info.provider) == (kind, reason, status, provider)
    assert info.classified
    assert info.error_type == type(exc).__name__
    # The server sends ``retry-after: 1`` with every 429 and nothing else says how long to wait.
    assert info.retry_after_s == (1.0 if status == 429 else None)
    # The same verdict survives the trip through a trigger event (JSON and back).
    assert classify_event(json.loads(json.dumps(error_event(exc)))) == info


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_connection_refused_is_transient(provider):
    port = closed_port()
    if provider == "openai":
        exc = raised_by(call_openai, openai_client(f"http://127.0.0.1:{port}/v1"), "hi")
    else:
        exc = raised_by(call_anthropic, anthropic_client(f"http://127.0.0.1:{port}"), "hi")
    assert isinstance(exc, (openai.APIConnectionError, anthropic.APIConnectionError))
    info = classify(exc)
    assert (info.kind, info.reason, info.status_code) == ("transient", "connection_error", None)
    assert info.provider == provider
    assert classify_event(error_event(exc)).transient


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_read_timeout_is_transient(llm, provider):
    exc = _sdk_error(llm, provider, "slow [[latency:2]]", timeout=0.3)
    assert isinstance(exc, (openai.APITimeoutError, anthropic.APITimeoutError))
    info = classify(exc)
    assert (info.kind, info.reason, info.provider) == ("transient", "timeout", provider)
    assert classify_event(error_event(exc)).reason == "timeout"


def test_retry_after_as_http_date(llm):
    when = datetime.now(timezone.utc) + timedelta(seconds=90)
    llm.configure(retry_after=format_datetime(when, usegmt=True))
    info = classify(_sdk_error(llm, "openai", "x [[fail:429]]"))
    assert 80 <= info.retry_after_s <= 91


def test_openai_reset_header_when_no_retry_after(llm):
    # An unparseable retry-after is ignored; the exhausted limit's reset (``6m0s`` style) is used.
    llm.configure(retry_after="soon", ratelimit_reset_seconds=360)
    exc = _sdk_error(llm, "openai", "x [[fail:429]]")
    assert exc.response.headers["x-ratelimit-reset-requests"] == "360s"
    assert classify(exc).retry_after_s == 360


def test_anthropic_reset_header_when_no_retry_after(llm):
    llm.configure(retry_after="soon", ratelimit_reset_seconds=120)
    exc = _sdk_error(llm, "anthropic", "x [[fail:429]]")
    assert exc.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    # RFC 3339 reset timestamp with whole seconds: allow for the truncation and the round trip.
    assert 115 <= classify(exc).retry_after_s <= 121


def test_header_forms():
    assert retry_after_from_headers(httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert retry_after_from_headers(httpx.Headers({"retry-after": "2.5"})) == 2.5
    reset = {
        "x-ratelimit-reset-requests": "6m0s",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-tokens": "20ms",
        "x-ratelimit-remaining-tokens": "100",
    }
    assert retry_after_from_headers(httpx.Headers(reset)) == 360
    assert retry_after_from_headers(httpx.Headers(reset), rate_limited=False) is None
    past = (datetime.now(timezone.utc) - timedelta(seconds=30)).isoformat()
    assert retry_after_from_headers({"anthropic-ratelimit-requests-reset": past}) == 0.0
    assert [parse_go_duration(t) for t in ("1s", "6m0s", "20ms", "1h2m3.5s", "2", "x")] == [
        1,
        360,
        0.02,
        3723.5,
        2,
        None,
    ]


def test_declared_and_builtin_errors():
    budget = classify(BudgetExceeded("dag:erp", 1.0, 0.9, 0.0, 0.5))
    assert (budget.kind, budget.reason) == ("permanent", "marked_permanent")

    open_error = classify(CircuitOpenError("openai/gpt-4o-mini", 12.5))
    assert (open_error.kind, open_error.reason, open_error.retry_after_s) == (
        "transient",
        "circuit_open",
        12.5,
    )

    assert classify(asyncio.TimeoutError()).reason == "timeout"
    assert classify(ConnectionRefusedError()).reason == "connection_error"

    unknown = classify(KeyError("choices"))
    assert (unknown.kind, unknown.classified, unknown.reason) == ("permanent", False, "unclassified")


def test_cause_chain_is_followed(llm):
    sdk_error = _sdk_error(llm, "anthropic", "x [[fail:529]]")
    try:
        raise RuntimeError("agent step failed") from sdk_error
    except RuntimeError as wrapped:
        info = classify(wrapped)
    assert (info.kind, info.reason, info.status_code) == ("transient", "overloaded", 529)


def test_minimal_events_and_rebuilt_errors():
    assert classify_event({"status": "error", "error_type": "X", "status_code": 503}).reason == "server_error"
    assert classify_event({"status": "error", "error_type": "APITimeoutError"}).reason == "timeout"
    assert classify_event(
        {"status": "error", "status_code": 400, "message": "prompt is too long"}
    ).reason == ("context_length_exceeded")
    assert not classify_event({"status": "error", "error_type": "ValueError"}).classified

    event = {"status": "error", "error_type": "RateLimitError", "status_code": 429, "retry_after_s": 7}
    rebuilt = ClassifiedError.from_event(event)
    info = classify(rebuilt)
    assert (info.kind, info.reason, info.retry_after_s, info.status_code) == (
        "transient",
        "rate_limited",
        7,
        429,
    )
    assert classify(ClassifiedError.from_event({"status_code": 401})).permanent
