"""
CostBudgetSensor: gate a step on the money left in a budget scope.

Why a sensor: an expensive step (a month-end reconciliation, a bulk re-classification) should not
start when the run, module, workflow day or month has already used its money; it either waits for
room (reservations released, the next UTC day or month) or, with ``wait=False``, checks once and
fails (or skips with ``soft_fail``). The decision itself is ``cost.check.check_budget``, shared with
the deferrable path's ``CostBudgetTrigger``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
)

from airflow_agent_provider.cost.check import SCOPES

if TYPE_CHECKING:
    from airflow_agent_provider.cost.check import BudgetCheck


class CostBudgetSensor(BaseSensorOperator):
    """
    Wait until (or check that) spend in a budget scope leaves room.

    :param max_spend_usd: the budget of the scope. Without ``required_usd`` the sensor succeeds when
        spend is below it; with ``required_usd`` when ``max_spend_usd - spend >= required_usd``.
    :param scope: ``run``, ``module``, ``workflow_day`` or ``workflow_month``.
    :param dag_id: templated; the workflow whose spend counts (default: this DAG).
    :param run_id: templated; for ``run``/``module`` (default: this run).
    :param module: templated; for ``module`` (default: this task's task group).
    :param period: templated ``YYYY-MM-DD`` / ``YYYY-MM`` for day/month scopes; default: the current
        UTC day or month at each check.
    :param include_reserved: count live reservations of running calls as spend (default True).
    :param wait: False checks once: a failed check fails the task (skips it with ``soft_fail``).
    :param deferrable: wait in the triggerer instead of holding a worker slot.
    :param store_url: the store to read; default: the provider's configured store.
    """

    # ``dag_id`` is a read-only BaseOperator property, so the targets live under ``target_*``.
    template_fields: Sequence[str] = (
        "target_dag_id",
        "target_run_id",
        "target_module",
        "period",
        "store_url",
    )
    ui_color = "#f5e6c8"

    def __init__(
        self,
        *,
        max_spend_usd: float,
        scope: str = "run",
        required_usd: float | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        module: str | None = None,
        period: str | None = None,
        include_reserved: bool = True,
        wait: bool = True,
        deferrable: bool = False,
        store_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        if max_spend_usd is None or max_spend_usd < 0:
            raise ValueError(f"max_spend_usd must be a non-negative number, got {max_spend_usd!r}")
        if required_usd is not None and required_usd < 0:
            raise ValueError(f"required_usd must be a non-negative number, got {required_usd!r}")
        self.scope = scope
        self.max_spend_usd = float(max_spend_usd)
        self.required_usd = None if required_usd is None else float(required_usd)
        self.target_dag_id = dag_id
        self.target_run_id = run_id
        self.target_module = module
        self.period = period
        self.include_reserved = include_reserved
        self.wait = wait
        self.deferrable = deferrable
        self.store_url = store_url

    def _target(self, context: Any) -> tuple[str, str | None, str | None]:
        """dag_id, run_id and module, defaulting to the running task's."""
        dag_id = self.target_dag_id or context["dag"].dag_id
        run_id = self.target_run_id or context.get("run_id")
        module = self.target_module
        if module is None and self.scope == "module":
            group = getattr(context.get("task"), "task_group", None)
            module = getattr(group, "group_id", None)
            if not module:
                raise AirflowFailException(
                    "CostBudgetSensor with scope='module' needs module= outside a task group"
                )
        return dag_id, run_id, module

    def _check(self, context: Any) -> BudgetCheck:
        # Imported here: the sensor is built at DAG parse time (every task start), the store only checks.
        from airflow_agent_provider.triggers.budget import run_check

        dag_id, run_id, module = self._target(context)
        return run_check(
            self.scope,
            dag_id,
            run_id,
            module,
            self.period,
            self.max_spend_usd,
            self.required_usd,
            self.include_reserved,
            self.store_url,
        )

    def poke(self, context: Any) -> PokeReturnValue:
        check = self._check(context)
        self.log.info("%s", check.message)
        if not check.ok and not self.wait:
            raise AirflowFailException(f"budget check failed: {check.message}")
        return PokeReturnValue(is_done=check.ok, xcom_value=check.to_dict())

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        # Check once on the worker: a scope with room needs no trip to the triggerer.
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        from airflow_agent_provider.triggers.budget import CostBudgetTrigger

        dag_id, run_id, module = self._target(context)
        self.defer(
            trigger=CostBudgetTrigger(
                scope=self.scope,
                dag_id=dag_id,
                run_id=run_id,
                module=module,
                period=self.period,
                max_spend_usd=self.max_spend_usd,
                required_usd=self.required_usd,
                include_reserved=self.include_reserved,
                poke_interval=float(self.poke_interval),
                timeout_s=float(self.timeout),
                store_url=self.store_url,
            ),
            method_name="execute_complete",
            # A backstop only: the trigger reports its own timeout with the last numbers.
            timeout=timedelta(seconds=float(self.timeout) + max(float(self.poke_interval), 60.0)),
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired; ``soft_fail`` turns a failure into a skip (base class)."""
        status = event.get("status")
        if status == "success":
            self.log.info("%s", event["check"]["message"])
            return event["check"]
        if status == "timeout":
            raise AirflowSensorTimeout(f"budget sensor timed out: {event['check']['message']}")
        raise AirflowException(f"budget sensor failed: {event.get('message', event)}")
