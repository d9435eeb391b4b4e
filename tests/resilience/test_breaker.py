"""Circuit-breaker contract on both stores (real SQLite, real redis-server), the engine against the
local LLM server, and the breaker shared by several processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import openai
import pytest

from airflow_agent_provider.resilience.breaker import BreakerConfig, CircuitBreaker, CircuitOpenError
from airflow_agent_provider.resilience.classify import classify
from tests.resilience.sdk_calls import OPENAI_MODEL, call_openai, openai_client

KEY = f"openai/{OPENAI_MODEL}"
REPO = Path(__file__).resolve().parents[2]


def _wait_past(seconds: float) -> None:
    """Let a breaker's reset timeout or window pass (state changes are lower-bounded by time)."""
    time.sleep(seconds + 0.1)


# -- store contract -----------------------------------------------------------------------------


def test_opens_after_threshold_failures_and_refuses_with_wait(store):
    cfg = BreakerConfig(failure_threshold=3, window_s=30, reset_timeout_s=30)
    assert store.breaker_state(KEY) == "closed"
    assert [store.breaker_record(KEY, False, cfg) for _ in range(2)] == ["closed", "closed"]
    assert store.breaker_allow(KEY, cfg).allowed

    assert store.breaker_record(KEY, False, cfg) == "open"

    decision = store.breaker_allow(KEY, cfg)
    assert (decision.allowed, decision.state) == (False, "open")
    assert 0 < decision.retry_in_s <= 30
    assert store.breaker_state(KEY) == "open"
    assert store.breaker_state("anthropic/other") == "closed"  # keys are independent


def test_failures_outside_the_window_do_not_count(store):
    cfg = BreakerConfig(failure_threshold=2, window_s=0.3, reset_timeout_s=30)
    store.breaker_record(KEY, False, cfg)
    _wait_past(0.3)
    assert store.breaker_record(KEY, False, cfg) == "closed"
    assert store.breaker_record(KEY, False, cfg) == "open"


def test_half_open_admits_a_limited_number_of_trials(store):
    cfg = BreakerConfig(failure_threshold=1, reset_timeout_s=0.2, half_open_max_calls=2)
    store.breaker_record(KEY, False, cfg)
    _wait_past(0.2)
    assert store.breaker_state(KEY) == "half_open"

    first, second, third = (store.breaker_allow(KEY, cfg) for _ in range(3))
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert first.trial_id
    assert second.trial_id
    assert first.trial_id != second.trial_id
    assert third.state == "half_open"
    assert third.retry_in_s > 0

    store.breaker_release(KEY, first.trial_id)  # a neutral outcome gives the slot back
    assert store.breaker_allow(KEY, cfg).allowed


def test_a_successful_trial_closes(store):
    cfg = BreakerConfig(failure_threshold=1, reset_timeout_s=0.2)
    store.breaker_record(KEY, False, cfg)
    _wait_past(0.2)
    trial = store.breaker_allow(KEY, cfg)
    assert store.breaker_record(KEY, True, cfg, trial_id=trial.trial_id) == "closed"
    assert store.breaker_allow(KEY, cfg).allowed


def test_a_failed_trial_reopens_for_a_new_timeout(store):
    cfg = BreakerConfig(failure_threshold=1, reset_timeout_s=0.2)
    store.breaker_record(KEY, False, cfg)
    _wait_past(0.2)
    trial = store.breaker_allow(KEY, cfg)
    assert store.breaker_record(KEY, False, cfg, trial_id=trial.trial_id) == "open"
    decision = store.breaker_allow(KEY, cfg)
    assert (decision.allowed, decision.state) == (False, "open")
    assert 0 < decision.retry_in_s <= 0.2


def test_an_abandoned_trial_lease_expires(store):
    cfg = BreakerConfig(failure_threshold=1, reset_timeout_s=0.2, trial_timeout_s=0.2)
    store.breaker_record(KEY, False, cfg)
    _wait_past(0.2)
    assert store.breaker_allow(KEY, cfg).allowed  # this trial's worker "dies"
    assert not store.breaker_allow(KEY, cfg).allowed
    _wait_past(0.2)
    assert store.breaker_allow(KEY, cfg).allowed


def test_reset_forgets_the_key(store):
    cfg = BreakerConfig(failure_threshold=1)
    store.breaker_record(KEY, False, cfg)
    store.breaker_reset(KEY)
    assert store.breaker_state(KEY) == "closed"
    assert store.breaker_allow(KEY, cfg).allowed


# -- the engine against the local LLM server ----------------------------------------------------


def test_open_breaker_fails_fast_without_calling_the_provider(store, llm):
    breaker = CircuitBreaker(store, KEY, BreakerConfig(failure_threshold=2, reset_timeout_s=60))
    client = openai_client(llm.openai_base_url)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            breaker.call(lambda: call_openai(client, "hi [[fail:500]]"))

    with pytest.raises(CircuitOpenError) as caught:
        breaker.call(lambda: call_openai(client, "hi"))

    assert llm.stats()["requests"] == 2
    info = classify(caught.value)
    assert (info.kind, info.reason) == ("transient", "circuit_open")
    assert 0 < caught.value.retry_in_s <= 60


def test_permanent_errors_do_not_open_the_breaker(store, llm):
    breaker = CircuitBreaker(store, KEY, BreakerConfig(failure_threshold=2))
    client = openai_client(llm.openai_base_url)
    for _ in range(3):
        with pytest.raises(openai.BadRequestError):
            breaker.call(lambda: call_openai(client, "bad prompt [[fail:400]]"))
    assert breaker.state == "closed"
    assert llm.stats()["requests"] == 3


def test_trial_through_the_engine(store, llm):
    breaker = CircuitBreaker(store, KEY, BreakerConfig(failure_threshold=1, reset_timeout_s=0.2))
    client = openai_client(llm.openai_base_url)
    with pytest.raises(openai.APIStatusError):
        breaker.call(lambda: call_openai(client, "hi [[fail:503]]"))
    assert breaker.state == "open"
    _wait_past(0.2)

    # A trial that ends in a permanent error says nothing about health: still half-open, slot freed.
    with pytest.raises(openai.BadRequestError):
        breaker.call(lambda: call_openai(client, "hi [[fail:400]]"))
    assert breaker.state == "half_open"

    assert "hi" in breaker.call(lambda: call_openai(client, "hi"))
    assert breaker.state == "closed"


def test_async_breaker(store, llm):
    breaker = CircuitBreaker(store, KEY, BreakerConfig(failure_threshold=1, reset_timeout_s=60))
    client = openai.AsyncOpenAI(base_url=llm.openai_base_url, api_key="k", max_retries=0)

    async def call(text: str) -> str:
        reply = await client.chat.completions.create(
            model=OPENAI_MODEL, messages=[{"role": "user", "content": text}]
        )
        return reply.choices[0].message.content

    async def scenario() -> None:
        assert "ok" in await breaker.acall(lambda: call("ok"))
        with pytest.raises(openai.InternalServerError):
            await breaker.acall(lambda: call("x [[fail:529]]"))
        with pytest.raises(CircuitOpenError):
            await breaker.acall(lambda: call("never sent"))

    asyncio.run(scenario())
    assert llm.stats()["requests"] == 2


# -- several processes share one breaker --------------------------------------------------------


def _worker(store_url: str, cfg: BreakerConfig, mode: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.resilience.breaker_worker",
            store_url,
            KEY,
            json.dumps(asdict(cfg)),
            mode,
            str(count),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def _result(proc: subprocess.Popen[str]) -> dict:
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    return json.loads(out)


def test_breaker_is_shared_across_processes(store, store_url, llm):
    # The reset timeout must outlast a child process's exit on a loaded machine (about 1 s seen).
    cfg = BreakerConfig(failure_threshold=3, reset_timeout_s=5.0, half_open_max_calls=2, trial_timeout_s=60)

    # Another process sees the provider fail and opens the breaker ...
    assert _result(_worker(store_url, cfg, "fail", 3)) == {"state": "open"}

    # ... and this process fails fast: the provider is not called.
    breaker = CircuitBreaker(store, KEY, cfg)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: call_openai(openai_client(llm.openai_base_url), "hi"))
    assert llm.stats()["requests"] == 0

    # Once half-open, four processes racing for trials get exactly half_open_max_calls between them.
    _wait_past(5.0)
    workers = [_worker(store_url, cfg, "grab", 25) for _ in range(4)]
    assert sum(_result(w)["admitted"] for w in workers) == 2
    assert store.breaker_state(KEY) == "half_open"
