"""An endpoint that echoes the request's credentials in its error body leaves no key in any text.

The gateway is a real loopback HTTP server; the calls go through the real openai and anthropic SDKs
via ``LLMHook`` (sync and async), ``test_connection`` and ``error_event`` (what triggers send). The
lead's and helper C's end-to-end tests cover XCom, the run result and the CLI.
"""

from __future__ import annotations

import asyncio
import json
import traceback
import uuid

import anthropic
import openai
import pytest

from airflow_agent_provider.hooks.llm import LLMHook, aclose_clients
from airflow_agent_provider.llm.types import LLMRequest, Message
from airflow_agent_provider.resilience.classify import classify, error_event
from airflow_agent_provider.security.redact import forget_secrets
from tests.security.loopback import EchoGateway

MODELS = {"openai": "gpt-5-mini", "anthropic": "claude-sonnet-4-6"}


@pytest.fixture
def key():
    # No vendor shape (no "sk-"): only the literal registration of the connection's key removes it.
    forget_secrets()
    yield f"echo-test-key-{uuid.uuid4().hex}"
    forget_secrets()


def _connect(monkeypatch, provider: str, url: str, key: str) -> str:
    conn_id = f"echo_{provider}_{uuid.uuid4().hex[:8]}"
    host = url + "/v1" if provider == "openai" else url
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps({"conn_type": f"agent_{provider}", "host": host, "password": key}),
    )
    return conn_id


def _request(provider: str) -> LLMRequest:
    return LLMRequest(
        provider=provider, model=MODELS[provider], messages=[Message("user", "hello")], max_tokens=5
    )


def _all_text(exc: BaseException) -> str:
    """Everything an exception can turn into: message, repr, traceback with its chain, body, response, request."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    seen, current = set(), exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(getattr(current, "body", None)), repr(getattr(current, "message", None))]
        response = getattr(current, "response", None)
        if response is not None:
            parts += [response.text, repr(dict(response.headers))]
        request = getattr(current, "request", None)
        if request is not None:
            parts += [str(request.url), repr(dict(request.headers))]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


SDK_ERRORS = (openai.APIStatusError, anthropic.APIStatusError)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_sync_call_error_carries_no_key(monkeypatch, key, provider):
    with EchoGateway(401) as gateway:
        hook = LLMHook(_connect(monkeypatch, provider, gateway.url, key))
        with pytest.raises(SDK_ERRORS) as caught:
            hook.complete(_request(provider))
    sent = gateway.requests[0]["headers"]
    assert key in (sent.get("authorization", "") + sent.get("x-api-key", ""))  # the gateway did get it ...
    exc = caught.value
    assert key not in _all_text(exc)  # ... and no text of the error has it
    # The classification survives the scrubbing: same SDK type, status and reason.
    assert type(exc).__module__.startswith(provider)
    assert exc.status_code == 401
    info = classify(exc)
    assert (info.kind, info.reason, info.status_code, info.provider) == (
        "permanent",
        "authentication",
        401,
        provider,
    )
    event = error_event(exc, llm_conn_id=hook.llm_conn_id)
    assert key not in json.dumps(event)
    assert event["status_code"] == 401


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_async_call_error_carries_no_key_and_keeps_retry_after(monkeypatch, key, provider):
    with EchoGateway(429) as gateway:
        hook = LLMHook(_connect(monkeypatch, provider, gateway.url, key))

        async def call():
            try:
                with pytest.raises(SDK_ERRORS) as caught:
                    await hook.acomplete(_request(provider))
                return caught.value
            finally:
                await aclose_clients()

        exc = asyncio.run(call())
    assert len(gateway.requests) == 1
    assert key in json.dumps(gateway.requests[0]["headers"])
    assert key not in _all_text(exc)
    info = classify(exc)
    assert (info.kind, info.reason, info.status_code, info.retry_after_s) == (
        "transient",
        "rate_limited",
        429,
        7.0,
    )
    assert key not in json.dumps(error_event(exc))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_test_connection_output_carries_no_key(monkeypatch, key, provider):
    with EchoGateway(401) as gateway:
        ok, message = LLMHook(_connect(monkeypatch, provider, gateway.url, key)).test_connection()
    assert not ok
    assert gateway.requests
    assert key not in message
    assert "401" in message or "Authentication" in message


def test_error_event_scrubs_an_sdk_error_that_never_went_through_the_hook(key):
    """A trigger that calls an SDK itself: error_event still removes the echoed credential headers."""
    with EchoGateway(401) as gateway:
        client = openai.OpenAI(api_key=key, base_url=gateway.url + "/v1", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        client.close()
    assert key in str(caught.value)  # the raw SDK message does carry it
    event = error_event(caught.value)
    assert key not in json.dumps(event)
    assert event["reason"] == "authentication"


def test_the_key_is_registered_with_airflows_secrets_masker(monkeypatch, key):
    from airflow.sdk.log import _secrets_masker

    with EchoGateway(401) as gateway:
        hook = LLMHook(_connect(monkeypatch, "openai", gateway.url, key))
        with pytest.raises(openai.AuthenticationError):
            hook.complete(_request("openai"))
    assert key not in str(_secrets_masker().redact(f"log line with {key}"))
