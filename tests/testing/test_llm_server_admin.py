"""Admin routes, configuration, connection variables, fixtures and subprocess mode."""

from __future__ import annotations

import json
import os
import urllib.error

import anthropic
import openai
import pytest

from airflow_agent_provider.testing import LLMServer, connection_env


def test_stats_log_and_reset(llm, oai, ant):
    oai.chat.completions.create(model="gpt-5-mini", messages=[{"role": "user", "content": "hello HR"}])
    with pytest.raises(anthropic.InternalServerError):
        ant.messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi [[fail:500]]"}]
        )
    stats = llm.stats()
    assert stats["requests"] == 2
    assert stats["by_path"] == {"/v1/chat/completions": 1, "/v1/messages": 1}
    assert stats["by_model"] == {"gpt-5-mini": 1, "claude-haiku-4-5": 1}
    assert stats["by_status"] == {"200": 1, "500": 1}
    first = stats["log"][0]
    assert first["user_excerpt"] == "hello HR"
    assert first["status"] == 200
    assert first["t_end"] >= first["t_start"]
    llm.reset()
    assert llm.stats()["requests"] == 0


def test_configure_rate_limit_headers_and_reject_unknown_fields(llm, oai):
    llm.configure(ratelimit_requests_remaining=2, ratelimit_tokens_remaining=50, ratelimit_reset_seconds=0.5)
    raw = oai.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.headers["x-ratelimit-remaining-requests"] == "2"
    assert raw.headers["x-ratelimit-remaining-tokens"] == "50"
    assert raw.headers["x-ratelimit-reset-requests"] == "500ms"
    with pytest.raises(urllib.error.HTTPError):
        llm.configure(no_such_field=1)
    llm.reset()
    raw = oai.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.headers["x-ratelimit-remaining-requests"] == "9999"


def test_connection_env_and_fixture(llm_connections):
    env = connection_env("http://h/v1", "http://h", api_key="k")
    assert json.loads(env["AIRFLOW_CONN_AGENT_OPENAI_DEFAULT"]) == {
        "conn_type": "agent_openai",
        "host": "http://h/v1",
        "password": "k",
    }
    assert json.loads(env["AIRFLOW_CONN_AGENT_ANTHROPIC_DEFAULT"])["conn_type"] == "agent_anthropic"
    openai_conn = json.loads(os.environ["AIRFLOW_CONN_AGENT_OPENAI_DEFAULT"])
    assert openai_conn["host"] == llm_connections.openai_base_url
    assert json.loads(os.environ["AIRFLOW_CONN_AGENT_ANTHROPIC_DEFAULT"])["host"] == llm_connections.url


def test_in_process_server_context_manager():
    with LLMServer(models=["only-model"]) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        assert [m.id for m in client.models.list()] == ["only-model"]
    with pytest.raises(ValueError, match="fail_rate"):
        LLMServer(fail_rate=2)


def test_subprocess_mode():
    with LLMServer.spawn(fail_rate=1.0, fail_mix=[503], seed=1) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        server.configure(fail_rate=0.0)
        reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert reply.choices[0].message.content == "[m] x"
        assert server.stats()["by_status"] == {"503": 1, "200": 1}
    assert server.process.poll() is not None
