"""The guarded call pipeline against the real SDK clients, the local LLM server and both stores."""

from __future__ import annotations

import asyncio
import inspect
import time
from dataclasses import replace

import anthropic
import openai
import pytest

from airflow_agent_provider.cost.budget import BudgetExceeded, BudgetLimits
from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.guard.config import GuardConfig, RateLimitRule
from airflow_agent_provider.guard.pipeline import GuardedCaller, max_input_tokens, typical_input_tokens
from airflow_agent_provider.llm.adapters import get_adapter
from airflow_agent_provider.llm.types import LLMRequest, Message
from airflow_agent_provider.resilience.breaker import CircuitOpenError
from airflow_agent_provider.resilience.fallback import FallbackTarget
from airflow_agent_provider.resilience.retrying import CallRetryPolicy
from airflow_agent_provider.stores.breaker_api import BreakerConfig


def _client(llm, provider: str, *, asynchronous: bool = False):
    if provider == "openai":
        cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        return cls(api_key="test-key", base_url=llm.openai_base_url, max_retries=0)
    cls = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
    return cls(api_key="test-key", base_url=llm.anthropic_base_url, max_retries=0)


def sdk_caller(llm):
    """What the hook does, without Airflow: official client + adapter, SDK retries off."""

    def call(target, request):
        adapter = get_adapter(target.provider)
        client = _client(llm, target.provider)
        create = client.chat.completions if target.provider == "openai" else client.messages
        raw = create.with_raw_response.create(**adapter.build_kwargs(request))
        return adapter.parse(raw.parse(), raw.headers, 0.0)

    return call


def async_sdk_caller(llm):
    async def call(target, request):
        adapter = get_adapter(target.provider)
        client = _client(llm, target.provider, asynchronous=True)
        create = client.chat.completions if target.provider == "openai" else client.messages
        raw = await create.with_raw_response.create(**adapter.build_kwargs(request))
        body = raw.parse()
        if inspect.isawaitable(body):
            body = await body
        await client.close()
        return adapter.parse(body, raw.headers, 0.0)

    return call


def _request(
    text: str, provider: str = "openai", model: str = "gpt-5-mini", max_tokens: int = 200
) -> LLMRequest:
    return LLMRequest(
        provider=provider, model=model, messages=[Message(role="user", content=text)], max_tokens=max_tokens
    )


def _config(run_id: str, *, run_cost_budget: float | None = None, **kwargs) -> GuardConfig:
    base = dict(
        dag_id="wf",
        run_id=run_id,
        module="Finance",
        agent="a",
        budgets=BudgetLimits(run_cost_budget=run_cost_budget),
        call_retries=CallRetryPolicy(max_attempts=3, base_delay_s=0.05, max_delay_s=2.0),
    )
    base.update(kwargs)
    return GuardConfig(**base)


def test_success_is_priced_settled_and_in_the_ledger(store, llm):
    caller = GuardedCaller(store, _config("r1", run_cost_budget=1.0))
    result = caller.call(
        _request("hello"), step_id="t1/round0", llm_conn_id=None, call_target=sdk_caller(llm)
    )
    assert result.response.text.startswith("[gpt-5-mini]")
    assert result.cost.known
    assert result.cost.usd > 0
    assert result.requests == 1
    assert result.charged
    summary = Ledger(store).run_summary("wf", "r1")
    assert summary.total.calls == 1
    assert summary.total.usd == pytest.approx(result.cost.usd)
    assert store.budget_reserved("run:wf:r1") == pytest.approx(0.0)


def test_transient_errors_are_retried_and_charged_once(store, llm):
    caller = GuardedCaller(store, _config("r2"))
    result = caller.call(
        _request("close the books [[fail:500 x2]]"),
        step_id="s",
        llm_conn_id=None,
        call_target=sdk_caller(llm),
    )
    assert result.requests == 3
    assert llm.stats()["requests"] == 3
    assert Ledger(store).run_summary("wf", "r2").total.calls == 1


def test_permanent_error_is_not_retried_and_releases_the_reservation(store, llm):
    caller = GuardedCaller(store, _config("r3", run_cost_budget=1.0))
    with pytest.raises(openai.AuthenticationError):
        caller.call(_request("x [[fail:401]]"), step_id="s", llm_conn_id=None, call_target=sdk_caller(llm))
    assert llm.stats()["requests"] == 1
    assert store.budget_reserved("run:wf:r3") == pytest.approx(0.0)
    assert Ledger(store).run_summary("wf", "r3").total.calls == 0


def test_budget_is_checked_before_the_call(store, llm):
    request = _request("expensive", max_tokens=4000)
    caller = GuardedCaller(
        store, _config("r4", run_cost_budget=0.001)
    )  # gpt-5-mini: 4000 out tokens cost more
    with pytest.raises(BudgetExceeded) as err:
        caller.call(request, step_id="s", llm_conn_id=None, call_target=sdk_caller(llm))
    assert err.value.permanent
    assert llm.stats()["requests"] == 0


def test_budget_never_overshot_over_many_calls(store, llm):
    budget = 0.01
    caller = GuardedCaller(store, _config("r5", run_cost_budget=budget))
    made = refused = 0
    for i in range(60):
        try:
            # each call really uses 1000 input + 500 output tokens (~0.00125 USD on gpt-5-mini)
            caller.call(
                _request(f"call {i} [[usage: in=1000 out=500]]", max_tokens=600),
                step_id=f"s{i}",
                llm_conn_id=None,
                call_target=sdk_caller(llm),
            )
            made += 1
        except BudgetExceeded:
            refused += 1
    spent = Ledger(store).run_summary("wf", "r5").total.usd
    assert 4 <= made < 60
    assert refused == 60 - made
    assert spent <= budget
    # every refusal was necessary: one more call at its real price would not have fit
    assert spent + 0.00125 > budget - 0.0013
    assert llm.stats()["requests"] == made


def test_rate_limit_waits_and_records_the_wait(store, llm):
    rule = RateLimitRule(
        key="openai/gpt-5-mini", limits={"requests_per_minute": 2}, provider="openai", model="gpt-5-mini"
    )
    # a 60 s window would make the test slow: use the store directly with a short pause instead
    caller = GuardedCaller(store, _config("r6", rate_limits=(rule,)))
    for i in range(2):
        caller.call(_request(f"q{i}"), step_id=f"s{i}", llm_conn_id=None, call_target=sdk_caller(llm))
    caller.limiter.pause("openai/gpt-5-mini", 0.0)
    # the third call in the same minute cannot be granted within a short timeout
    strict = GuardedCaller(store, _config("r6", rate_limits=(rule,), rate_limit_timeout_s=0.3))
    from airflow_agent_provider.limits.limiter import RateLimitTimeout

    with pytest.raises(RateLimitTimeout):
        strict.call(_request("q3"), step_id="s3", llm_conn_id=None, call_target=sdk_caller(llm))
    assert llm.stats()["requests"] == 2


def test_retry_after_of_a_429_is_honoured_and_pauses_every_caller_of_the_key(store, llm):
    llm.configure(retry_after="1")
    rule = RateLimitRule(key="openai", limits={"requests_per_minute": 1000}, provider="openai")
    caller = GuardedCaller(store, _config("r7", rate_limits=(rule,)))
    started = time.monotonic()
    result = caller.call(
        _request("q [[fail:429 x1]]"), step_id="s", llm_conn_id=None, call_target=sdk_caller(llm)
    )
    assert result.requests == 2
    assert time.monotonic() - started >= 0.9  # the retry waited the provider's retry-after

    # Another worker (its own caller, same store) is slowed down by a 429 it never saw.
    no_retry = GuardedCaller(
        store, _config("r7", rate_limits=(rule,), call_retries=CallRetryPolicy(max_attempts=1))
    )
    with pytest.raises(openai.RateLimitError):
        no_retry.call(_request("q [[fail:429]]"), step_id="s2", llm_conn_id=None, call_target=sdk_caller(llm))
    other = GuardedCaller(store, _config("r7", rate_limits=(rule,)))
    result = other.call(_request("q3"), step_id="s3", llm_conn_id=None, call_target=sdk_caller(llm))
    assert result.wait_s >= 0.5


def test_open_breaker_fails_fast_and_fallback_answers(store, llm):
    config = _config(
        "r8",
        call_retries=CallRetryPolicy(max_attempts=1),
        breaker=BreakerConfig(failure_threshold=2, window_s=60, reset_timeout_s=60),
        fallbacks=(FallbackTarget("anthropic", "claude-haiku-4-5"),),
    )
    caller = GuardedCaller(store, config)
    for i in range(2):  # two transient failures open the primary's breaker; the fallback answers
        result = caller.call(
            _request(f"q{i}", max_tokens=50),
            step_id=f"s{i}",
            llm_conn_id=None,
            call_target=_failing_openai(llm),
        )
        assert result.target.model == "claude-haiku-4-5"
    before = llm.stats()["by_path"].get("/v1/chat/completions", 0)
    result = caller.call(
        _request("q3", max_tokens=50), step_id="s3", llm_conn_id=None, call_target=_failing_openai(llm)
    )
    assert result.target.provider == "anthropic"
    assert result.attempts[0]["outcome"] == "circuit_open"
    assert llm.stats()["by_path"].get("/v1/chat/completions", 0) == before  # no call while open
    # without fallbacks an open breaker fails fast with a transient error
    no_fallback = GuardedCaller(store, _config("r8", breaker=config.breaker))
    with pytest.raises(CircuitOpenError):
        no_fallback.call(_request("q4"), step_id="s4", llm_conn_id=None, call_target=sdk_caller(llm))


def _failing_openai(llm):
    call = sdk_caller(llm)

    def failing(target, request):
        if target.provider == "openai":
            request = replace(request, extra_headers={**request.extra_headers, "x-llm-fail": "503"})
        return call(target, request)

    return failing


def test_async_path_matches_the_sync_one(store, llm):
    caller = GuardedCaller(store, _config("r9", run_cost_budget=1.0))
    result = asyncio.run(
        caller.acall(
            _request("hi [[fail:529 x1]]", provider="anthropic", model="claude-sonnet-4-6"),
            step_id="s",
            llm_conn_id=None,
            call_target=async_sdk_caller(llm),
        )
    )
    assert result.requests == 2
    assert result.cost.known
    assert Ledger(store).run_summary("wf", "r9").total.calls == 1


def test_budget_reservation_bounds_the_input_whatever_the_language():
    english = _request("x" * 4000)
    assert typical_input_tokens(english) >= 1000
    assert max_input_tokens(english) >= 4000  # bytes: an upper bound of byte-level BPE tokens
    cjk = _request("月" * 1000)  # one character can be a whole token; 3 UTF-8 bytes each
    assert max_input_tokens(cjk) >= 3000 >= 1000


def test_targets_are_prepared_before_any_permit_is_held(store, llm):
    """A cold worker's SDK import and client build happen before the permit, not between it and the send."""
    rule = RateLimitRule(
        key="openai/gpt-5-mini", limits={"max_concurrent": 1}, provider="openai", model="gpt-5-mini"
    )
    caller = GuardedCaller(store, _config("r10", rate_limits=(rule,)))
    held: list[tuple[str, bool]] = []

    def lease_free() -> bool:
        probe = caller.limiter.try_acquire(rule.key, rule.policy)
        if probe is not None:
            probe.release()
        return probe is not None

    def prepare(target):
        held.append(("prepare", lease_free()))

    def send(target, request):
        held.append(("send", lease_free()))
        return sdk_caller(llm)(target, request)

    caller.call(_request("hi"), step_id="s", llm_conn_id=None, call_target=send, prepare_target=prepare)
    assert held == [("prepare", True), ("send", False)]

    async def aprepare(target):
        held.append(("aprepare", lease_free()))

    async def asend(target, request):
        held.append(("asend", lease_free()))
        return await async_sdk_caller(llm)(target, request)

    asyncio.run(
        caller.acall(
            _request("hi"), step_id="s2", llm_conn_id=None, call_target=asend, prepare_target=aprepare
        )
    )
    assert held[2:] == [("aprepare", True), ("asend", False)]
