"""Rate limits from the connection's ``rate_limits`` extra apply to every agent using that connection."""

from __future__ import annotations

import json

import pytest

from airflow_agent_provider.limits.limiter import RateLimitTimeout
from airflow_agent_provider.operators.agent import LLMAgentOperator
from airflow_agent_provider.resilience.classify import classify
from tests.operators.agent_support import make_context, run_operator


@pytest.fixture
def limited_connection(llm, monkeypatch):
    conn = {
        "conn_type": "agent_openai",
        "host": llm.openai_base_url,
        "password": "test-key",
        "extra": {"rate_limits": json.dumps({"requests_per_minute": 1})},
    }
    monkeypatch.setenv("AIRFLOW_CONN_LIMITED_OPENAI", json.dumps(conn))
    return llm


def _agent(task_id: str) -> LLMAgentOperator:
    return LLMAgentOperator(
        task_id=task_id,
        llm_conn_id="limited_openai",
        prompt=f"{task_id} [[reply: ok]]",
        rate_limit_timeout=0.5,
        call_retries={"max_attempts": 1},
        execution="worker",
    )  # the worker path: the limit's own error reaches the task


def test_connection_extra_limits_every_agent_of_the_connection(limited_connection):
    op = _agent("first")
    context = make_context()
    config = op._guard_config(context)
    assert [(r.key, r.llm_conn_id, r.limits) for r in config.rate_limits] == [
        (
            "conn:limited_openai",
            "limited_openai",
            {"requests_per_minute": 1, "lease_ttl_s": 600.0, "window_margin_s": 2.0},
        )
    ]
    assert run_operator(op, context)["text"] == "ok"
    # a second agent on the same connection (another task, same account) is held back by the limit
    with pytest.raises(RateLimitTimeout) as err:
        run_operator(_agent("second"), make_context())
    info = classify(err.value)  # the task retry waits for the limit's next chance
    assert info.transient
    assert 0 < info.retry_after_s <= 62
    assert limited_connection.stats()["requests"] == 1


def test_a_bad_limit_on_the_connection_is_a_clear_error(llm, monkeypatch):
    conn = {
        "conn_type": "agent_openai",
        "host": llm.openai_base_url,
        "password": "k",
        "extra": {"rate_limits": {"request_per_minute": 5}},
    }
    monkeypatch.setenv("AIRFLOW_CONN_TYPO_OPENAI", json.dumps(conn))
    op = LLMAgentOperator(task_id="t", llm_conn_id="typo_openai", prompt="p")
    with pytest.raises(ValueError, match="unknown rate limit option"):
        run_operator(op, make_context())
    assert llm.stats()["requests"] == 0
