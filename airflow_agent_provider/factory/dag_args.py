"""
The DAG-level arguments of a workflow: its params, its schedule (cron or the producers' assets) and
its budget gates. Pure mapping from the definition, as the table in :mod:`.builder` lists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, Param

from airflow_agent_provider.definitions.models import default_asset_uri
from airflow_agent_provider.sensors.budget import CostBudgetSensor

if TYPE_CHECKING:
    from airflow_agent_provider.definitions import BudgetGateSpec, Workflow

GATE_TASK_ID = "budget_gate"
_GATE_SCOPES = {"run": "run", "day": "workflow_day", "month": "workflow_month"}


def gate_sensor(task_id: str, gate: BudgetGateSpec) -> CostBudgetSensor:
    """A budget gate: a closed gate skips what is behind it (``soft_fail``), it never fails the run."""
    return CostBudgetSensor(
        task_id=task_id,
        max_spend_usd=gate.max_spend,
        scope=_GATE_SCOPES[gate.scope],
        wait=gate.wait,
        soft_fail=True,
        mode="reschedule" if gate.wait else "poke",
        timeout=gate.timeout,
        poke_interval=gate.poke_interval,
        retries=0,
    )


def dag_params(workflow: Workflow) -> dict[str, Param]:
    """
    ``Workflow.params`` as Airflow Params: Airflow validates a triggered run's ``conf`` against them
    (type, enum, bounds) and fills in defaults; ``{{ params.x }}`` and expressions read the result.
    A param without a default must be given when the run is triggered.
    """
    params = {}
    for name, spec in workflow.params.items():
        extra: dict[str, Any] = {"description": spec.description} if spec.description else {}
        if spec.has_default:
            params[name] = Param(spec.default, **spec.json_schema(), **extra)
        else:
            params[name] = Param(**spec.json_schema(), **extra)
    return params


def dag_schedule(workflow: Workflow, produces_by_name: Mapping[str, str] | None = None) -> Any:
    """
    The cron/preset schedule, or for ``triggered_by`` the producers' assets.

    A list of assets means Airflow queues a run once *every* listed producer has emitted an event
    since this workflow's last run. A producer's asset is its ``produces`` when known (the loader
    passes every workflow of the folder), else the default ``agent-workflow://<name>``.
    """
    if not workflow.triggered_by:
        return workflow.schedule
    known = produces_by_name or {}
    return [Asset(known.get(name) or default_asset_uri(name)) for name in workflow.triggered_by]


__all__ = ["GATE_TASK_ID", "dag_params", "dag_schedule", "gate_sensor"]
