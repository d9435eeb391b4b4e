"""CostBudgetSensor in real Airflow runs (dag.test): deferrable through its trigger, reschedule, check-once."""

from __future__ import annotations

import datetime

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_agent_provider.cost.budget import BudgetGuard, BudgetLimits, CallScope
from airflow_agent_provider.cost.pricing import CallCost
from airflow_agent_provider.hooks.store import get_store
from airflow_agent_provider.llm.types import Usage
from airflow_agent_provider.sensors.budget import CostBudgetSensor
from tests.fixtures.airflow_env import task_states, xcom_result

pytestmark = pytest.mark.airflow
START = pendulum.datetime(2026, 1, 1, tz="UTC")


def _spend_today(dag_id: str, usd: float) -> None:
    """Earlier runs of the workflow spent ``usd`` today (through the real budget API)."""
    scope = CallScope(
        dag_id=dag_id, run_id="earlier", module="M", agent="a", model="gpt-5-mini", provider="openai"
    )
    reservation = BudgetGuard(get_store()).reserve(
        scope, usd, BudgetLimits(), reservation_id=f"{dag_id}-seed"
    )
    reservation.settle(CallCost(usd=usd, source="override", warning=None), Usage(10, 10, 0))


@pytest.mark.parametrize("mode", ["deferrable", "reschedule", "poke"])
def test_sensor_passes_when_the_day_has_room(run_dag, mode):
    dag_id = f"sensor_room_{mode}"
    _spend_today(dag_id, 0.5)
    kwargs = {"deferrable": True} if mode == "deferrable" else {"mode": mode}
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        CostBudgetSensor(
            task_id="gate",
            scope="workflow_day",
            max_spend_usd=1.0,
            required_usd=0.25,
            poke_interval=datetime.timedelta(seconds=1),
            timeout=datetime.timedelta(seconds=30),
            **kwargs,
        )
    run = run_dag(dag)
    assert task_states(run) == {"gate": "success"}
    check = xcom_result(run, "gate")
    assert check["ok"]
    assert check["spent"] == pytest.approx(0.5)
    assert check["remaining"] == pytest.approx(0.5)


def test_check_once_with_soft_fail_skips_when_the_day_is_spent(run_dag):
    dag_id = "sensor_spent"
    _spend_today(dag_id, 2.0)
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        CostBudgetSensor(task_id="gate", scope="workflow_day", max_spend_usd=1.0, wait=False, soft_fail=True)
    run = run_dag(dag)
    assert task_states(run) == {"gate": "skipped"}
    assert str(run.state) == "success"


def test_check_once_without_soft_fail_fails_the_task(run_dag):
    dag_id = "sensor_spent_hard"
    _spend_today(dag_id, 2.0)
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        CostBudgetSensor(task_id="gate", scope="workflow_day", max_spend_usd=1.0, wait=False, retries=0)
    run = run_dag(dag)
    assert task_states(run) == {"gate": "failed"}
