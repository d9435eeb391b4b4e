"""LLMCallTrigger: serialisation, one async call per run, error events; and the operator's deferral loop."""

from __future__ import annotations

import asyncio
import json

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_agent_provider.llm.types import LLMRequest, LLMResponse, Message
from airflow_agent_provider.operators.agent import LLMAgentOperator
from airflow_agent_provider.resilience.classify import ClassifiedError
from airflow_agent_provider.triggers.llm import LLMCallTrigger
from tests.operators.agent_support import make_context

MODELS = {"openai": "gpt-5-mini", "anthropic": "claude-sonnet-4-6"}


def _first_event(trigger: LLMCallTrigger):
    async def first():
        async for event in trigger.run():
            return event

    return asyncio.run(first())


def _trigger(provider: str, text: str) -> LLMCallTrigger:
    request = LLMRequest(provider=provider, model=MODELS[provider], messages=[Message("user", text)])
    return LLMCallTrigger(
        llm_conn_id=f"agent_{provider}_default", provider=provider, request=request.to_dict()
    )


def test_serialize_round_trip_without_key(llm_connections):
    trigger = _trigger("openai", "hi")
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_agent_provider.triggers.llm.LLMCallTrigger"
    assert set(kwargs) == {"llm_conn_id", "provider", "request", "guard", "step_id"}
    assert "test-key" not in json.dumps(kwargs)  # the key is read in the triggerer, never carried
    again = LLMCallTrigger(**json.loads(json.dumps(kwargs)))
    assert again.serialize() == (classpath, kwargs)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_run_yields_the_normalised_response(llm_connections, provider):
    event = _first_event(_trigger(provider, "[[reply: deferred hello]]"))
    assert event.payload["status"] == "success"
    response = LLMResponse.from_dict(event.payload["response"])
    assert response.text == "deferred hello"
    assert response.provider == provider
    assert response.usage.input_tokens > 0
    assert response.request_id


def test_run_yields_a_classified_error(llm_connections):
    event = _first_event(_trigger("anthropic", "[[fail:429]]"))
    payload = event.payload
    assert payload["status"] == "error"
    assert payload["status_code"] == 429
    assert payload["kind"] == "transient"
    assert payload["error_type"]
    assert "test-key" not in json.dumps(payload)
    assert llm_connections.stats()["requests"] == 1


def test_operator_defers_each_round_and_keeps_state_in_defer_kwargs(llm_connections):
    """Drives the deferral loop as the real triggerer does (event merged into the defer kwargs)."""
    op = LLMAgentOperator(
        task_id="deferred",
        provider="anthropic",
        prompt="Check invoices",
        tools={"add": "tests.llm.sample_tools.add"},
        deferrable=True,
    )
    context = make_context()  # no task_state_store: the loop state must travel in the defer kwargs
    op.render_template_fields(context)
    step, deferrals = op.execute, 0
    kwargs: dict = {}
    while True:
        try:
            result = step(context, **kwargs)
            break
        except TaskDeferred as exc:
            deferred = exc
        deferrals += 1
        assert deferred.method_name == "execute_complete"
        json.dumps(deferred.kwargs)  # JSON-safe
        event = _first_event(deferred.trigger)
        kwargs = {**deferred.kwargs, "event": event.payload}
        step = op.execute_complete
    assert deferrals == 2
    assert result["rounds"] == 2
    assert result["tool_calls"][0]["name"] == "add"
    assert result["tool_calls"][0]["ok"]
    assert llm_connections.stats()["requests"] == 2


def test_execute_complete_raises_classified_error():
    op = LLMAgentOperator(task_id="x", prompt="p", deferrable=True)
    event = {
        "status": "error",
        "error_type": "RateLimitError",
        "status_code": 429,
        "message": "slow down",
        "retry_after_s": 3.0,
    }
    with pytest.raises(ClassifiedError) as info:
        op.execute_complete(make_context(), event=event, state=None)
    assert info.value.transient
    assert info.value.retry_after_s == 3.0


def test_guarded_run_reserves_limits_and_settles_in_the_triggerer(llm_connections, tmp_path, monkeypatch):
    """With a guard the trigger runs the whole pipeline: the ledger gets exactly one charge."""
    from airflow_agent_provider.cost.budget import BudgetLimits
    from airflow_agent_provider.cost.ledger import Ledger
    from airflow_agent_provider.guard.config import GuardConfig, RateLimitRule
    from airflow_agent_provider.guard.pipeline import GuardedResult
    from airflow_agent_provider.hooks.store import get_store, reset_store
    from airflow_agent_provider.resilience.retrying import CallRetryPolicy

    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__STORE_URL", f"sqlite:///{tmp_path}/store.db")
    reset_store()
    guard = GuardConfig(
        dag_id="d",
        run_id="r",
        module="M",
        agent="a",
        budgets=BudgetLimits(run_cost_budget=1.0),
        rate_limits=(RateLimitRule(key="openai", limits={"requests_per_minute": 100}, provider="openai"),),
        call_retries=CallRetryPolicy(max_attempts=2, base_delay_s=0.01),
    )
    request = LLMRequest(
        provider="openai", model="gpt-5-mini", messages=[Message("user", "hi [[fail:500 x1]]")]
    )
    trigger = LLMCallTrigger(
        llm_conn_id="agent_openai_default",
        provider="openai",
        request=request.to_dict(),
        guard=guard.to_dict(),
        step_id="d/r/M.a/-1/try1/call0",
    )
    event = _first_event(trigger)
    assert event.payload["status"] == "success"
    result = GuardedResult.from_dict(event.payload["result"])
    assert result.requests == 2
    assert result.cost.known
    assert Ledger(get_store()).run_summary("d", "r").total.calls == 1
    reset_store()
