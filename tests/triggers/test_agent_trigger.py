"""AgentTrigger run directly (its ``run()`` in an event loop) against the local LLM server and a real store.

The trigger is set up the way the triggerer sets up a task started from the trigger: the kwargs the
scheduler takes from ``start_trigger_args``, a task instance, the task's template context through
``render_template_fields`` and a trigger id. What it yields is then handed to the operator exactly
as Airflow would: a task-ending event ends the task, any other event resumes ``execute_complete``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from airflow.sdk.definitions.retry_policy import RetryAction
from airflow.serialization.serialized_objects import OperatorSerialization
from airflow.triggers.base import TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.hooks.store import get_store, reset_store
from airflow_agent_provider.operators.agent import LLMAgentOperator
from airflow_agent_provider.operators.retry_policy import AgentRetryPolicy
from airflow_agent_provider.resilience.classify import ClassifiedError
from airflow_agent_provider.triggers.agent import AgentTrigger
from tests.operators.agent_support import MemoryStateStore, XComTI, make_context, run_operator

VOLATILE = {"latency_s", "request_ids", "wait_s"}


class TriggererTI(XComTI):
    """The task instance the triggerer hands a trigger (identity, try number, XCom reads)."""

    def __init__(self, xcoms=None, try_number: int = 1, run_id: str = "manual__t") -> None:
        super().__init__(xcoms, try_number)
        self.run_id = run_id


@pytest.fixture
def ledger_store(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__STORE_URL", f"sqlite:///{tmp_path}/store.db")
    reset_store()
    yield get_store()
    reset_store()


def _rebuilt(op: LLMAgentOperator):
    """The task as the triggerer rebuilds it (``create_runtime_ti``): through Airflow's serializer."""
    encoded = json.loads(json.dumps(OperatorSerialization.serialize_operator(op)))
    return OperatorSerialization.deserialize_operator(encoded)


def _started_by_triggerer(op: LLMAgentOperator, ti: TriggererTI | None = None, **context) -> AgentTrigger:
    """What the triggerer builds for a task with ``start_from_trigger`` (kwargs from the serialized DAG)."""
    assert op.start_from_trigger
    assert op.start_trigger_args.trigger_cls.endswith("AgentTrigger")
    kwargs = json.loads(json.dumps(op.start_trigger_args.trigger_kwargs))  # they travel through the DB
    trigger = AgentTrigger(**kwargs)
    ti = ti or TriggererTI()
    ti.task = _rebuilt(op)
    trigger.task_instance = ti
    trigger.render_template_fields(
        {
            "ti": ti,
            "run_id": ti.run_id,
            "dag_id": ti.dag_id,
            "ds": "2026-01-01",
            "params": context.pop("params", {}),
            **context,
        }
    )
    trigger.trigger_id = 42  # set by the triggerer: the trigger may end the task
    return trigger


def _run(trigger) -> TriggerEvent:
    async def first():
        async for event in trigger.run():
            return event

    return asyncio.run(first())


def _agent(task_id="t", **kwargs) -> LLMAgentOperator:
    kwargs.setdefault("agent_meta", {"workflow": "w", "module": "M", "agent": task_id, "critical": True})
    return LLMAgentOperator(task_id=task_id, **kwargs)


def test_triggerer_only_agent_ends_its_task_with_the_worker_result(llm_connections, ledger_store):
    prompt = "Summarise [[reply: Payroll totals 1.2M.]]"
    trigger = _started_by_triggerer(_agent(prompt=prompt, execution="triggerer", cost_limit=1.0))
    event = _run(trigger)
    assert isinstance(event, TaskSuccessEvent)
    assert set(event.xcoms) == {"return_value"}
    result = event.xcoms["return_value"]
    assert llm_connections.stats()["requests"] == 1
    entries = Ledger(ledger_store).run_summary("execute_tests", "manual__t")
    assert entries.total.calls == 1
    assert entries.total.usd == pytest.approx(result["cost_usd"])

    # the same agent on a worker: the same record, field for field (but ids and timings)
    worker = run_operator(
        _agent(prompt=prompt, execution="worker", cost_limit=1.0), make_context(store=MemoryStateStore())
    )
    assert list(result) == list(worker)
    assert {k: v for k, v in result.items() if k not in VOLATILE} == {
        k: v for k, v in worker.items() if k not in VOLATILE
    }
    assert result["text"] == "Payroll totals 1.2M."
    assert result["rounds"] == 1
    assert result["cost_known"]


def test_upstream_results_are_read_in_the_triggerer(llm_connections, ledger_store):
    op = _agent(
        prompt="Check: {{ results.summary.text }} [[reply: fine]]",
        execution="triggerer",
        upstream_tasks={"summary": "M.summary"},
        prompt_context="workflow",
    )
    ti = TriggererTI({"M.summary": {"status": "success", "text": "UPSTREAM-TEXT"}})
    event = _run(_started_by_triggerer(op, ti))
    assert isinstance(event, TaskSuccessEvent)
    assert "UPSTREAM-TEXT" in llm_connections.stats()["log"][0]["user_excerpt"]


def test_condition_false_and_missing_critical_upstream_skip_in_the_triggerer(llm_connections, ledger_store):
    op = _agent(prompt="p", execution="triggerer", condition="params.run == True")
    event = _run(_started_by_triggerer(op, params={"run": False}))
    assert isinstance(event, TaskSkippedEvent)
    assert event.xcoms["return_value"]["status"] == "skipped"
    assert "was false" in event.xcoms["skip_reason"]
    op = _agent(prompt="p", execution="triggerer", critical_upstreams=["M.gone"])
    event = _run(_started_by_triggerer(op))
    assert isinstance(event, TaskSkippedEvent)
    assert "M.gone" in event.xcoms["skip_reason"]
    assert llm_connections.stats()["requests"] == 0


def _resume_on_worker(op: LLMAgentOperator, event: TriggerEvent, store: MemoryStateStore | None = None):
    """The task resumed on a worker with the event (``next_method``), as the scheduler does it."""
    assert not isinstance(event, (TaskSuccessEvent, TaskSkippedEvent))  # a plain event: back to a worker
    context = make_context(store=store)
    return op.execute_complete(context, event=json.loads(json.dumps(event.payload))), context


def test_a_budget_that_refuses_fails_at_once_without_a_call(llm_connections, ledger_store):
    op = _agent(prompt="[[reply: expensive]]", execution="triggerer", cost_limit=1e-9, retries=3)
    event = _run(_started_by_triggerer(op))
    assert event.payload["status"] == "error"
    assert event.payload["kind"] == "permanent"
    assert event.payload["error_type"] == "BudgetExceeded"
    with pytest.raises(ClassifiedError) as info:
        _resume_on_worker(op, event)
    decision = AgentRetryPolicy().evaluate(info.value, try_number=1, max_tries=4)
    assert decision.action == RetryAction.FAIL
    assert "permanent" in decision.reason
    assert llm_connections.stats()["requests"] == 0
    assert Ledger(ledger_store).run_summary("execute_tests", "manual__t").total.calls == 0


def test_a_transient_error_resumes_on_a_worker_with_the_providers_delay(llm_connections, ledger_store):
    llm_connections.configure(retry_after="7")
    op = _agent(prompt="[[fail:429]]", execution="triggerer", call_retries={"max_attempts": 1}, retries=2)
    event = _run(_started_by_triggerer(op))
    assert event.payload["kind"] == "transient"
    assert event.payload["retry_after_s"] == 7.0
    with pytest.raises(ClassifiedError) as info:
        _resume_on_worker(op, event)
    decision = AgentRetryPolicy(base_delay=0.0).evaluate(info.value, try_number=1, max_tries=3)
    assert decision.action == RetryAction.RETRY
    assert decision.retry_delay >= timedelta(seconds=7)


def test_a_401_fails_at_once(llm_connections, ledger_store):
    op = _agent(prompt="[[fail:401]]", execution="triggerer", retries=3)
    event = _run(_started_by_triggerer(op))
    assert event.payload["kind"] == "permanent"
    assert event.payload["status_code"] == 401
    with pytest.raises(ClassifiedError) as info:
        _resume_on_worker(op, event)
    assert AgentRetryPolicy().evaluate(info.value, try_number=1, max_tries=4).action == RetryAction.FAIL
    assert llm_connections.stats()["requests"] == 1


def test_a_retry_continues_on_a_worker_from_task_state_store(llm_connections, ledger_store):
    op = _agent(prompt="[[reply: second try]]", execution="triggerer")
    event = _run(_started_by_triggerer(op, TriggererTI(try_number=2)))
    assert event.payload["status"] == "resume"
    assert llm_connections.stats()["requests"] == 0
    # on the worker the agent defers once and ends in the triggerer (here: inline, as dag.test does)
    context = make_context(store=MemoryStateStore())
    op.render_template_fields(context)
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        op.execute_complete(context, event=event.payload)
    done = _run(deferred.value.trigger)
    assert done.payload["status"] == "done"  # not in a triggerer: the result goes back to the task
    result = op.execute_complete(context, event=done.payload)
    assert result["text"] == "second try"
    assert llm_connections.stats()["requests"] == 1


def test_trigger_kwargs_hold_no_key_and_round_trip(llm_connections):
    op = _agent(prompt="p", execution="triggerer")
    trigger = AgentTrigger(**op.start_trigger_args.trigger_kwargs)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_agent_provider.triggers.agent.AgentTrigger"
    assert "test-key" not in json.dumps(kwargs)
    assert AgentTrigger(**json.loads(json.dumps(kwargs))).serialize() == (classpath, kwargs)


def test_start_kwargs_are_completed_from_the_rebuilt_task(llm_connections):
    """The task's own fields are not repeated in the start kwargs: the trigger reads them from the task."""
    op = _agent(
        task_id="M.check",
        prompt="Check {{ params.region }}",
        system_prompt="Be brief.",
        model="gpt-5-mini",
        execution="triggerer",
        execution_timeout=timedelta(minutes=3),
        cost_limit=0.5,
    )
    start = json.loads(op.start_trigger_args.trigger_kwargs["start"])
    assert not set(start) & {
        "task_id",
        "prompt",
        "system_prompt",
        "model",
        "llm_conn_id",
        "execution_timeout_s",
    }
    assert "module" not in start["guard"]
    assert "agent" not in start["guard"]
    trigger = AgentTrigger(**json.loads(json.dumps(op.start_trigger_args.trigger_kwargs)))
    ti = TriggererTI()
    ti.task = _rebuilt(op)
    trigger.task_instance = ti
    assert trigger.agent == op.agent_config()
    assert trigger.agent.guard.budgets.agent_cost_limit == 0.5
    assert (trigger.agent.guard.module, trigger.agent.guard.agent) == ("M", "M.check")


def test_a_started_trigger_without_its_task_resumes_on_a_worker(llm_connections):
    """Start kwargs alone cannot run (the task is missing): one clear failure event, no model call."""
    op = _agent(prompt="p [[reply: never]]", execution="triggerer")
    trigger = AgentTrigger(**op.start_trigger_args.trigger_kwargs)
    trigger.task_instance = TriggererTI()  # no .task: not what the triggerer hands a started task
    event = _run(trigger)
    assert event.payload["status"] == "error"
    assert "rebuilds its task" in event.payload["message"]
    assert llm_connections.stats()["requests"] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of them"),
        (
            {"agent": {"task_id": "t", "prompt": "p", "llm_conn_id": "c"}, "start": "{}"},
            "exactly one of them",
        ),
        ({"start": "{}", "run": {"loop": {}}}, "takes no run="),
    ],
)
def test_bad_trigger_arguments_get_one_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AgentTrigger(**kwargs)


def test_start_kwargs_repeating_task_fields_are_refused():
    from airflow_agent_provider.agent_loop.config import AgentConfig

    task = _rebuilt(_agent(prompt="p", execution="triggerer"))
    with pytest.raises(ValueError, match="must not repeat what the task carries"):
        AgentConfig.from_start_kwargs('{"prompt": "other"}', task)
    with pytest.raises(ValueError, match="ledger identity"):
        AgentConfig.from_start_kwargs('{"guard": {"module": "X"}}', task)
    with pytest.raises(ValueError, match="must be a JSON object"):
        AgentConfig.from_start_kwargs("[1]", task)
