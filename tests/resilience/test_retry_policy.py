"""AgentRetryPolicy: decisions on real SDK exceptions, and its place in DAG serialization."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from airflow.sdk import DAG, BaseOperator
from airflow.sdk.definitions.retry_policy import RetryAction
from airflow.serialization.serialized_objects import DagSerialization

from airflow_agent_provider.cost.budget import BudgetExceeded
from airflow_agent_provider.operators.retry_policy import AgentRetryPolicy
from airflow_agent_provider.resilience.breaker import CircuitOpenError
from tests.resilience.sdk_calls import anthropic_client, call_anthropic, call_openai, openai_client, raised_by

POLICY = AgentRetryPolicy(base_delay=10, max_delay=60, jitter=False)


def _openai_error(llm, text: str, **kwargs) -> BaseException:
    return raised_by(call_openai, openai_client(llm.openai_base_url, **kwargs), text)


def test_permanent_errors_fail_at_once(llm):
    for exc in (
        _openai_error(llm, "hi", api_key="invalid-key"),
        _openai_error(llm, "hi [[fail:400]]"),
        raised_by(call_anthropic, anthropic_client(llm.anthropic_base_url), "hi [[fail:403]]"),
        BudgetExceeded("dag:erp", 1.0, 1.0, 0.0, 0.1),
    ):
        decision = POLICY.evaluate(exc, try_number=1, max_tries=3)
        assert decision.action == RetryAction.FAIL
        assert decision.reason.startswith("permanent model error")


def test_rate_limit_waits_as_long_as_the_provider_asks(llm):
    llm.configure(retry_after="120")
    decision = POLICY.evaluate(_openai_error(llm, "hi [[fail:429]]"), try_number=1, max_tries=3)
    assert decision.action == RetryAction.RETRY
    # Beyond max_delay: the provider's wait is honoured, the backoff cap does not apply to it.
    assert decision.retry_delay == timedelta(seconds=120)
    assert "rate_limited" in decision.reason
    assert "retry-after" in decision.reason


def test_server_errors_back_off_exponentially(llm):
    exc = raised_by(call_anthropic, anthropic_client(llm.anthropic_base_url), "hi [[fail:529]]")
    delays = [POLICY.evaluate(exc, try_number=n, max_tries=5).retry_delay for n in (1, 2, 3, 4)]
    assert delays == [timedelta(seconds=s) for s in (10, 20, 40, 60)]

    jittered = AgentRetryPolicy(base_delay="10s", max_delay="1m").evaluate(exc, try_number=2, max_tries=5)
    assert timedelta(seconds=10) <= jittered.retry_delay <= timedelta(seconds=20)


def test_open_breaker_retries_when_it_may_half_open():
    decision = POLICY.evaluate(CircuitOpenError("openai/gpt-5-mini", 45.0), try_number=1, max_tries=3)
    assert (decision.action, decision.retry_delay) == (RetryAction.RETRY, timedelta(seconds=45))


def test_unknown_errors_keep_the_task_default():
    assert POLICY.evaluate(KeyError("choices"), try_number=1, max_tries=3).action == RetryAction.DEFAULT


def test_serialize_round_trip_and_definition_block():
    policy = AgentRetryPolicy.from_mapping(
        {"attempts": 2, "base_delay": "30s", "max_delay": "10m", "exponential": True, "jitter": False}
    )
    data = policy.serialize()
    assert data == {
        "__type": "AgentRetryPolicy",
        "base_delay": 30.0,
        "max_delay": 600.0,
        "exponential": True,
        "jitter": False,
    }
    assert AgentRetryPolicy.deserialize(json.loads(json.dumps(data))) == policy
    with pytest.raises(ValueError, match="unknown retries setting"):
        AgentRetryPolicy.from_mapping({"base_dealy": "30s"})


class _AgentLikeOperator(BaseOperator):
    def execute(self, context):
        return None


def test_dag_with_the_policy_serializes_and_deserializes():
    with DAG("retry_policy_roundtrip", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        _AgentLikeOperator(task_id="agent", retries=3, retry_policy=AgentRetryPolicy(base_delay="10s"))
        _AgentLikeOperator(task_id="plain", retries=1)

    encoded = DagSerialization.to_dict(dag)
    text = json.dumps(encoded)
    restored = DagSerialization.from_dict(json.loads(text))

    assert restored.get_task("agent").has_retry_policy is True
    assert restored.get_task("agent").retries == 3
    assert restored.get_task("plain").has_retry_policy is False
    # Deterministic: nothing like an object's memory address leaks into the serialized DAG.
    assert DagSerialization.to_dict(dag) == encoded
    assert "AgentRetryPolicy object at" not in text


class _CallModel(BaseOperator):
    """Stands in for the agent operator: one real model call through the real SDK."""

    def __init__(self, *, base_url: str, api_key: str, **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url
        self.api_key = api_key

    def execute(self, context):
        return call_openai(openai_client(self.base_url, api_key=self.api_key), "hi")


def test_airflow_fails_a_permanent_error_without_retrying(llm, run_dag):
    from tests.fixtures.airflow_env import task_states

    with DAG("retry_policy_permanent", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        _CallModel(
            task_id="agent",
            base_url=llm.openai_base_url,
            api_key="invalid-key",
            retries=3,
            retry_delay=timedelta(seconds=0),
            retry_policy=AgentRetryPolicy(),
        )

    dag_run = run_dag(dag)

    assert task_states(dag_run) == {"agent": "failed"}
    assert llm.stats()["requests"] == 1  # 3 retries configured, none used: a 401 cannot get better
