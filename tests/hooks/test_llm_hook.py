"""LLMHook against the local LLM server with the real openai/anthropic clients over HTTP."""

from __future__ import annotations

import asyncio
import json

import anthropic
import openai
import pytest

from airflow_agent_provider.hooks.llm import AnthropicAgentHook, LLMHook, OpenAIAgentHook, resolve_provider
from airflow_agent_provider.llm.types import LLMRequest, Message, ToolSpec

MODELS = {"openai": "gpt-5-mini", "anthropic": "claude-sonnet-4-6"}
LOOKUP = ToolSpec(
    name="lookup_invoice",
    description="Look up an invoice",
    parameters={"type": "object", "properties": {"number": {"type": "string"}}, "required": ["number"]},
)


def _request(provider: str, text: str, **kwargs) -> LLMRequest:
    return LLMRequest(provider=provider, model=MODELS[provider], messages=[Message("user", text)], **kwargs)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_complete_sync_text(llm_connections, provider):
    hook = LLMHook(f"agent_{provider}_default")
    assert hook.provider == provider
    resp = hook.complete(
        _request(provider, "Summarise payroll [[reply: Payroll is fine.]] [[usage: in=120 out=7 cached=20]]")
    )
    assert resp.text == "Payroll is fine."
    assert resp.provider == provider
    assert resp.model == MODELS[provider]
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.cached_input_tokens) == (120, 7, 20)
    assert resp.finish_reason == "stop"
    assert resp.request_id
    assert resp.latency_s > 0
    prefix = "x-ratelimit-" if provider == "openai" else "anthropic-ratelimit-"
    assert resp.rate_limit_headers
    assert all(k.startswith(prefix) for k in resp.rate_limit_headers)
    assert llm_connections.stats()["requests"] == 1


@pytest.mark.parametrize("hook_class", [OpenAIAgentHook, AnthropicAgentHook])
def test_complete_async_tool_calls(llm_connections, hook_class):
    hook = hook_class()
    provider = hook.provider
    request = _request(
        provider, 'Check [[tool:lookup_invoice {"number": "INV-7"}]]', tools=[LOOKUP], system="ERP"
    )
    resp = asyncio.run(hook.acomplete(request))
    assert [(c.name, c.arguments) for c in resp.tool_calls] == [("lookup_invoice", {"number": "INV-7"})]
    assert resp.finish_reason == "tool_calls"
    assert resp.usage.input_tokens > 0
    assert resp.request_id
    assert resp.latency_s > 0
    # the neutral response survives the JSON trip a trigger event makes
    assert json.loads(json.dumps(resp.to_dict()))["tool_calls"][0]["arguments"] == {"number": "INV-7"}


def test_clients_are_official_with_sdk_retries_off(llm_connections, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ERP_OPENAI",
        json.dumps(
            {
                "conn_type": "agent_openai",
                "host": llm_connections.openai_base_url,
                "password": "test-key",
                "extra": {
                    "organization": "org-1",
                    "project": "proj-1",
                    "timeout": 12,
                    "default_model": "gpt-5",
                },
            }
        ),
    )
    hook = LLMHook("erp_openai")
    client = hook.get_conn()
    assert isinstance(client, openai.OpenAI)
    assert client.max_retries == 0
    assert client.organization == "org-1"
    assert client.project == "proj-1"
    assert client.timeout == 12
    assert hook.default_model == "gpt-5"
    aclient = asyncio.run(hook.get_async_conn())
    assert isinstance(aclient, openai.AsyncOpenAI)
    assert aclient.max_retries == 0
    anth = AnthropicAgentHook().get_conn()
    assert isinstance(anth, anthropic.Anthropic)
    assert anth.max_retries == 0
    assert AnthropicAgentHook().default_model == "claude-sonnet-4-6"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_server_error_is_raised_once_without_sdk_retry(llm_connections, provider):
    hook = LLMHook(f"agent_{provider}_default")
    with pytest.raises((openai.APIStatusError, anthropic.APIStatusError)) as info:
        hook.complete(_request(provider, "hello [[fail:503]]"))
    assert info.value.status_code == 503
    assert llm_connections.stats()["requests"] == 1  # max_retries=0: retries are ours, not the SDK's


def test_generic_connection_needs_provider(llm_connections, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_VLLM", json.dumps({"conn_type": "generic", "host": llm_connections.openai_base_url})
    )
    with pytest.raises(ValueError, match="pass provider="):
        _ = LLMHook("vllm").provider
    hook = LLMHook("vllm", provider="openai")
    resp = hook.complete(_request("openai", "[[reply: ok]]"))  # no key: a placeholder is sent
    assert resp.text == "ok"
    with pytest.raises(ValueError, match="is for provider 'anthropic'"):
        resolve_provider("agent_anthropic", "openai")


def test_request_for_wrong_provider_is_refused(llm_connections):
    with pytest.raises(ValueError, match="request is for provider 'anthropic'"):
        OpenAIAgentHook().complete(_request("anthropic", "hi"))
    assert llm_connections.stats()["requests"] == 0


def test_test_connection(llm_connections, monkeypatch):
    ok, message = OpenAIAgentHook().test_connection()
    assert ok
    assert "openai" in message
    monkeypatch.setenv(
        "AIRFLOW_CONN_BAD_ANTHROPIC",
        json.dumps(
            {
                "conn_type": "agent_anthropic",
                "host": llm_connections.anthropic_base_url,
                "password": "invalid-key",
            }
        ),
    )
    ok, message = LLMHook("bad_anthropic").test_connection()
    assert not ok
    assert "invalid-key" not in message
    assert "401" in message or "Authentication" in message


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_sdks_per_request_info_lines_stay_out_of_the_logs(llm_connections, provider, caplog, monkeypatch):
    """Both SDKs log every request through their httpx copy at INFO; a fleet's triggerer carried hundreds."""
    import logging

    from airflow_agent_provider.hooks import _client_cache

    monkeypatch.setattr(_client_cache, "_sync_clients", {})  # a process's first client
    logger = logging.getLogger("httpx2")
    saved = logger.level
    logger.setLevel(logging.NOTSET)  # as in a fresh process
    try:
        with caplog.at_level(logging.INFO):
            LLMHook(f"agent_{provider}_default").complete(_request(provider, "hi [[reply: ok]]"))
        assert [r.getMessage() for r in caplog.records if r.name == "httpx2"] == []
        assert logger.level == logging.WARNING

        caplog.clear()
        logger.setLevel(logging.INFO)  # a level the deployment chose is kept
        monkeypatch.setattr(_client_cache, "_sync_clients", {})
        with caplog.at_level(logging.INFO):
            LLMHook(f"agent_{provider}_default").complete(_request(provider, "hi [[reply: ok]]"))
        assert logger.level == logging.INFO
        assert any(
            r.getMessage().startswith("HTTP Request: POST") for r in caplog.records if r.name == "httpx2"
        )
    finally:
        logger.setLevel(saved)
