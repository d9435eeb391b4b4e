"""No ambient credentials (issue 13 item 8): the SDKs' environment variables never reach a call.

Every OpenAI/Anthropic environment fallback is pointed at a loopback "trap" server with a trap key;
the hook is used through the real SDKs. A connection without key and host is an error naming it;
a connection with a host uses only the connection's values; a host-only connection sends the
documented placeholder key; the trap never sees a request.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from airflow_agent_provider.hooks.llm import (
    PLACEHOLDER_API_KEY,
    VENDOR_BASE_URLS,
    LLMConnectionError,
    LLMHook,
    aclose_clients,
)
from airflow_agent_provider.llm.types import LLMRequest, Message
from airflow_agent_provider.resilience.classify import classify
from tests.security.loopback import RecordingServer

MODELS = {"openai": "gpt-5-mini", "anthropic": "claude-sonnet-4-6"}
TRAP_KEY = "trap-key-from-the-environment"


@pytest.fixture
def trap(monkeypatch):
    with RecordingServer() as server:
        for name, value in {
            "OPENAI_API_KEY": TRAP_KEY,
            "OPENAI_BASE_URL": server.url + "/v1",
            "OPENAI_ORG_ID": "org-trap",
            "OPENAI_PROJECT_ID": "proj-trap",
            "OPENAI_ADMIN_KEY": TRAP_KEY,
            "OPENAI_WEBHOOK_SECRET": TRAP_KEY,
            "OPENAI_CUSTOM_HEADERS": "X-Trap: 1\nAuthorization: Bearer " + TRAP_KEY,
            "ANTHROPIC_API_KEY": TRAP_KEY,
            "ANTHROPIC_AUTH_TOKEN": TRAP_KEY,
            "ANTHROPIC_BASE_URL": server.url,
            "ANTHROPIC_CUSTOM_HEADERS": "X-Trap: 1",
        }.items():
            monkeypatch.setenv(name, value)
        yield server


def _conn(monkeypatch, provider: str, **fields) -> str:
    conn_id = f"amb_{provider}_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": f"agent_{provider}", **fields})
    )
    return conn_id


def _request(provider: str) -> LLMRequest:
    return LLMRequest(
        provider=provider, model=MODELS[provider], messages=[Message("user", "hi")], max_tokens=5
    )


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_no_key_and_no_host_is_an_error_naming_the_connection(monkeypatch, trap, provider):
    conn_id = _conn(monkeypatch, provider, extra={"default_model": MODELS[provider]})
    hook = LLMHook(conn_id)
    with pytest.raises(LLMConnectionError, match=f"connection '{conn_id}' has no API key") as caught:
        hook.complete(_request(provider))
    assert classify(caught.value).permanent  # fails at once, no retry

    async def acall():
        with pytest.raises(LLMConnectionError, match=conn_id):
            await LLMHook(conn_id).acomplete(_request(provider))

    asyncio.run(acall())
    ok, message = LLMHook(conn_id).test_connection()
    assert not ok
    assert conn_id in message
    assert TRAP_KEY not in message
    assert trap.requests == []


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_connection_with_host_and_key_uses_only_those(monkeypatch, trap, provider):
    with RecordingServer() as endpoint:
        host = endpoint.url + "/v1" if provider == "openai" else endpoint.url
        conn_id = _conn(monkeypatch, provider, host=host, password="the-connection-key")
        assert LLMHook(conn_id).complete(_request(provider)).text == "recorded"

        async def acall():
            try:
                return await LLMHook(conn_id).acomplete(_request(provider))
            finally:
                await aclose_clients()

        assert asyncio.run(acall()).text == "recorded"
    assert trap.requests == []
    assert len(endpoint.requests) == 2
    for request in endpoint.requests:
        headers = request["headers"]
        sent = headers.get("authorization", "") + headers.get("x-api-key", "")
        assert "the-connection-key" in sent
        assert TRAP_KEY not in json.dumps(headers)
        assert "x-trap" not in headers
        assert "openai-organization" not in headers
        assert "openai-project" not in headers


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_host_only_connection_sends_the_placeholder_key(monkeypatch, trap, provider):
    with RecordingServer() as endpoint:
        host = endpoint.url + "/v1" if provider == "openai" else endpoint.url
        conn_id = _conn(monkeypatch, provider, host=host)
        assert LLMHook(conn_id).complete(_request(provider)).text == "recorded"
    headers = endpoint.requests[0]["headers"]
    assert PLACEHOLDER_API_KEY in headers.get("authorization", "") + headers.get("x-api-key", "")
    assert TRAP_KEY not in json.dumps(headers)
    assert trap.requests == []


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_key_only_connection_goes_to_the_vendor_not_to_the_environment(monkeypatch, trap, provider):
    # Not called (no network here): the clients are checked instead.
    conn_id = _conn(monkeypatch, provider, password="the-connection-key", extra={"organization": "org-conn"})
    client = LLMHook(conn_id).get_conn()
    assert str(client.base_url).rstrip("/") == VENDOR_BASE_URLS[provider]
    assert client.api_key == "the-connection-key"
    assert client._custom_headers == {}
    if provider == "openai":
        assert (client.organization, client.project, client.admin_api_key) == ("org-conn", None, None)
    else:
        assert client.auth_token is None

    async def aclient():
        try:
            return await LLMHook(conn_id).get_async_conn()
        finally:
            await aclose_clients()

    client = asyncio.run(aclient())
    assert str(client.base_url).rstrip("/") == VENDOR_BASE_URLS[provider]
    assert client.api_key == "the-connection-key"
