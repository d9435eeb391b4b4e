"""Fallbacks between models on the local server, through breakers in a real store."""

from __future__ import annotations

import asyncio

import openai
import pytest

from airflow_agent_provider.resilience.breaker import BreakerConfig, CircuitBreaker
from airflow_agent_provider.resilience.fallback import (
    FallbackTarget,
    NoFallbackTargets,
    acall_with_fallbacks,
    call_with_fallbacks,
)
from airflow_agent_provider.resilience.retrying import CallRetryPolicy, call_with_retries
from tests.resilience.sdk_calls import call_openai, openai_client

PRIMARY = FallbackTarget("openai", "gpt-5-mini", "agent_openai_default")
SECONDARY = FallbackTarget("openai", "gpt-4o-mini", "agent_openai_backup")
CFG = BreakerConfig(failure_threshold=2, reset_timeout_s=60)


@pytest.fixture
def breakers(store):
    return lambda target: CircuitBreaker(store, target.key, CFG)


def _caller(llm, *, fail: dict[str, str] | None = None, text: str = "summarise payroll"):
    """``call_one``: one model call per target, with in-call retries; ``fail`` injects errors per model."""
    client = openai_client(llm.openai_base_url)

    def call_one(target: FallbackTarget) -> str:
        headers = {"x-llm-fail": fail[target.model]} if fail and target.model in fail else {}
        return call_with_retries(
            lambda: call_openai(client, text, model=target.model, extra_headers=headers),
            CallRetryPolicy(max_attempts=2, base_delay_s=0.01),
        )

    return call_one


def test_open_primary_breaker_goes_straight_to_the_fallback(llm, store, breakers):
    for _ in range(CFG.failure_threshold):
        store.breaker_record(PRIMARY.key, False, CFG)

    result, used, attempts = call_with_fallbacks([PRIMARY, SECONDARY], _caller(llm), breakers)

    assert used == SECONDARY
    assert result.startswith("[gpt-4o-mini]")
    assert llm.stats()["by_model"] == {"gpt-4o-mini": 1}
    assert [(a.target.model, a.outcome) for a in attempts] == [
        ("gpt-5-mini", "circuit_open"),
        ("gpt-4o-mini", "ok"),
    ]
    assert attempts[0].retry_after_s > 0


def test_transient_failure_after_retries_falls_back(llm, breakers):
    _, used, attempts = call_with_fallbacks(
        [PRIMARY, SECONDARY], _caller(llm, fail={"gpt-5-mini": "503"}), breakers
    )
    assert used == SECONDARY
    assert llm.stats()["by_model"] == {"gpt-5-mini": 2, "gpt-4o-mini": 1}  # 2 attempts, then the fallback
    assert [(a.outcome, a.reason) for a in attempts] == [("transient_error", "server_error"), ("ok", None)]
    assert attempts[0].to_dict()["target"]["llm_conn_id"] == "agent_openai_default"


def test_permanent_error_does_not_fall_back(llm, breakers):
    with pytest.raises(openai.BadRequestError):
        call_with_fallbacks([PRIMARY, SECONDARY], _caller(llm, fail={"gpt-5-mini": "400"}), breakers)
    assert llm.stats()["by_model"] == {"gpt-5-mini": 1}


def test_all_targets_failing_raises_the_last_transient_error(llm, breakers):
    call_one = _caller(llm, fail={"gpt-5-mini": "529", "gpt-4o-mini": "500"})
    with pytest.raises(openai.InternalServerError) as caught:
        call_with_fallbacks([PRIMARY, SECONDARY], call_one, breakers)
    assert caught.value.status_code == 500
    assert "all fallback targets failed" in caught.value.__notes__[0]
    with pytest.raises(NoFallbackTargets):
        call_with_fallbacks([], call_one, breakers)


def test_async_fallback(llm, store, breakers):
    for _ in range(CFG.failure_threshold):
        store.breaker_record(PRIMARY.key, False, CFG)
    client = openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="k", max_retries=0)

    async def acall_one(target: FallbackTarget) -> str:
        reply = await client.chat.completions.create(
            model=target.model, messages=[{"role": "user", "content": "count stock"}]
        )
        return reply.choices[0].message.content

    result, used, _ = asyncio.run(acall_with_fallbacks([PRIMARY, SECONDARY], acall_one, breakers))
    assert used == SECONDARY
    assert result.startswith("[gpt-4o-mini]")
    assert llm.stats()["by_model"] == {"gpt-4o-mini": 1}
