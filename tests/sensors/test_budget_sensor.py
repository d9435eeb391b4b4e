"""CostBudgetSensor and CostBudgetTrigger against a real SQLite store (poke/execute called directly)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import pytest
from airflow.sdk import DAG, TaskGroup
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_agent_provider.cost.budget import BudgetGuard, BudgetLimits, CallScope
from airflow_agent_provider.cost.pricing import CallCost
from airflow_agent_provider.llm.types import Usage
from airflow_agent_provider.sensors.budget import CostBudgetSensor
from airflow_agent_provider.stores.config import store_from_url
from airflow_agent_provider.triggers.budget import CostBudgetTrigger


@pytest.fixture
def store_url(tmp_path):
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def store(store_url):
    instance = store_from_url(store_url)
    yield instance
    instance.close()


def spend(store, usd, *, dag_id="erp", run_id="r1", module="Finance", agent="rec", settle=True, rid=None):
    call = CallScope(dag_id, run_id, module, agent, "gpt-5-mini", "openai", at=datetime.now(timezone.utc))
    held = BudgetGuard(store).reserve(call, usd, BudgetLimits(), reservation_id=rid or uuid.uuid4().hex)
    if settle:
        held.settle(CallCost(usd, "override"), Usage(10, 10))
    return held


def make(store_url, dag_name="erp", group=None, **kwargs):
    kwargs.setdefault("poke_interval", 0.01)
    with DAG(dag_name, schedule=None) as dag:
        if group:
            with TaskGroup(group):
                sensor = CostBudgetSensor(task_id="budget", store_url=store_url, **kwargs)
        else:
            sensor = CostBudgetSensor(task_id="budget", store_url=store_url, **kwargs)
    return sensor, {"dag": dag, "run_id": "r1", "task": sensor}


def test_poke_passes_below_max_and_waits_above(store, store_url):
    sensor, context = make(store_url, max_spend_usd=1.0)
    spend(store, 0.4)
    result = sensor.poke(context)
    assert result.is_done
    assert result.xcom_value["scope_key"] == "run:erp:r1"
    assert result.xcom_value["spent"] == pytest.approx(0.4)
    spend(store, 0.6, settle=False)  # a running call's reservation counts
    assert not sensor.poke(context).is_done
    sensor_settled_only, _ = make(store_url, max_spend_usd=1.0, include_reserved=False)
    assert sensor_settled_only.poke(context).is_done


def test_required_usd_checks_the_room_left(store, store_url):
    spend(store, 0.7)
    assert (
        make(store_url, max_spend_usd=1.0, required_usd=0.3)[0]
        .poke(make(store_url, max_spend_usd=1)[1])
        .is_done
    )
    sensor, context = make(store_url, max_spend_usd=1.0, required_usd=0.31)
    assert not sensor.poke(context).is_done


def test_check_once_fails_or_skips_with_soft_fail(store, store_url):
    spend(store, 2.0)
    sensor, context = make(store_url, max_spend_usd=1.0, wait=False)
    with pytest.raises(AirflowFailException, match=r"run:erp:r1.*not yet"):
        sensor.execute(context)
    sensor, context = make(store_url, max_spend_usd=1.0, wait=False, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.execute(context)


def test_execute_returns_check_or_times_out(store, store_url):
    sensor, context = make(store_url, max_spend_usd=1.0)
    assert sensor.execute(context)["remaining"] == pytest.approx(1.0)
    spend(store, 1.0)
    sensor, context = make(store_url, max_spend_usd=1.0, timeout=0)
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute(context)
    sensor, context = make(store_url, max_spend_usd=1.0, timeout=0, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.execute(context)


def test_module_scope_defaults_to_the_task_group(store, store_url):
    spend(store, 0.6, module="Finance")
    spend(store, 0.1, module="HR")
    sensor, context = make(store_url, group="HR", scope="module", max_spend_usd=0.5)
    assert sensor.poke(context).xcom_value["scope_key"] == "module:erp:r1:HR"
    assert sensor.poke(context).is_done
    sensor, context = make(store_url, scope="module", module="Finance", max_spend_usd=0.5)
    assert not sensor.poke(context).is_done
    sensor, context = make(store_url, scope="module", max_spend_usd=0.5)
    with pytest.raises(AirflowFailException, match="task group"):
        sensor.poke(context)


def test_workflow_day_and_month_span_runs(store, store_url):
    spend(store, 0.3, run_id="r1")
    spend(store, 0.3, run_id="r2")
    now = datetime.now(timezone.utc)
    day, _ = make(store_url, scope="workflow_day", max_spend_usd=0.5)
    check = day.poke({"dag": day.dag, "run_id": "r3", "task": day})
    assert check.xcom_value["scope_key"] == f"day:erp:{now:%Y-%m-%d}"
    assert not check.is_done
    month, context = make(store_url, scope="workflow_month", max_spend_usd=0.7)
    assert month.poke(context).is_done
    other_day, context = make(store_url, scope="workflow_day", period="2000-01-01", max_spend_usd=0.5)
    assert other_day.poke(context).is_done


def test_templated_targets(store, store_url):
    spend(store, 0.9, dag_id="other_dag", run_id="manual__1")
    sensor, context = make(
        store_url,
        max_spend_usd=0.5,
        dag_id="{{ params.target }}",
        run_id="manual__{{ params.n }}",
        params={"target": "other_dag", "n": 1},
    )
    assert set(CostBudgetSensor.template_fields) >= {"target_dag_id", "target_run_id", "target_module"}
    context["params"] = {"target": "other_dag", "n": 1}
    sensor.render_template_fields(context)
    assert (sensor.target_dag_id, sensor.target_run_id) == ("other_dag", "manual__1")
    assert not sensor.poke(context).is_done


def test_default_store_comes_from_provider_settings():
    # tests/conftest.py points AIRFLOW__AGENT_PROVIDER__STORE_URL at the session's SQLite file.
    dag_id = f"erp_{uuid.uuid4().hex[:8]}"
    sensor, context = make(None, dag_name=dag_id, max_spend_usd=1.0)
    from airflow_agent_provider.triggers.budget import budget_store

    with budget_store() as default_store:
        spend(default_store, 1.5, dag_id=dag_id)
    assert not sensor.poke(context).is_done


def test_deferrable_returns_at_once_when_there_is_room(store, store_url):
    sensor, context = make(store_url, max_spend_usd=1.0, deferrable=True)
    assert sensor.execute(context)["ok"] is True


def test_deferrable_defers_to_the_trigger(store, store_url):
    spend(store, 1.0)
    sensor, context = make(store_url, max_spend_usd=1.0, deferrable=True, timeout=600, poke_interval=5)
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(context)
    trigger = info.value.trigger
    assert isinstance(trigger, CostBudgetTrigger)
    assert info.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_agent_provider.triggers.budget.CostBudgetTrigger"
    assert kwargs["dag_id"] == "erp"
    assert kwargs["run_id"] == "r1"
    assert kwargs["timeout_s"] == 600
    assert CostBudgetTrigger(**kwargs).serialize() == (classpath, kwargs)


def run_trigger(store_url, **kwargs):
    """A trigger on run ``erp``/``r1`` with at most $1.00 spent (``kwargs`` override)."""
    args = {"scope": "run", "dag_id": "erp", "run_id": "r1", "module": None, "period": None}
    return CostBudgetTrigger(**{**args, "max_spend_usd": 1.0, "store_url": store_url, **kwargs})


async def _first_event(trigger):
    async for event in trigger.run():
        return event.payload


def test_trigger_fires_when_a_reservation_is_released(store, store_url):
    held = spend(store, 0.8, settle=False)
    trigger = run_trigger(store_url, required_usd=0.5, poke_interval=0.02)

    async def scenario():
        waiting = asyncio.create_task(_first_event(trigger))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await asyncio.to_thread(held.release)
        return await waiting

    payload = asyncio.run(scenario())
    assert payload["status"] == "success"
    assert payload["check"]["reserved"] == 0.0
    sensor, context = make(store_url, max_spend_usd=1.0, deferrable=True)
    assert sensor.execute_complete(context, payload)["ok"] is True


def test_trigger_timeout_and_errors_become_sensor_failures(store, store_url):
    spend(store, 1.0)
    trigger = run_trigger(store_url, poke_interval=0.01, timeout_s=0)
    payload = asyncio.run(_first_event(trigger))
    assert payload["status"] == "timeout"
    assert "run:erp:r1" in payload["check"]["message"]
    sensor, context = make(store_url, max_spend_usd=1.0, deferrable=True)
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute_complete(context, payload)
    soft, context = make(store_url, max_spend_usd=1.0, deferrable=True, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        soft.resume_execution("execute_complete", {"event": payload}, context)

    broken = run_trigger("nosuch://x")
    error = asyncio.run(_first_event(broken))
    assert error["status"] == "error"
    assert "nosuch" in error["message"]
    with pytest.raises(Exception, match="budget sensor failed"):
        sensor.execute_complete(context, error)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="scope must be one of"):
        CostBudgetSensor(task_id="x", max_spend_usd=1.0, scope="week")
    with pytest.raises(ValueError, match="max_spend_usd must be a non-negative number"):
        CostBudgetSensor(task_id="x", max_spend_usd=-1)
