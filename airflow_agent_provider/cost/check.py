"""
Whether a budget scope has room: the check behind ``CostBudgetSensor`` and its trigger.

Kept Airflow-free so the sensor (worker) and the trigger (triggerer) decide in exactly the same
way, and so the check can be tested without Airflow.

Spend is settled USD plus, by default, live reservations: a call already running will spend up to
its reservation, so ignoring it would let a downstream step start on money that is already taken.
For ``workflow_day`` / ``workflow_month`` without an explicit period, the period is the current UTC
day or month at each check, so waiting on a spent-up day ends when the next day begins.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    # The budget sensor imports this module at DAG parse time; the budget engine and the store API
    # are imported where a check runs.
    from airflow_agent_provider.stores.budget_api import BudgetStore

SensorScope = Literal["run", "module", "workflow_day", "workflow_month"]
SCOPES: tuple[str, ...] = ("run", "module", "workflow_day", "workflow_month")


def scope_key(
    scope: str,
    dag_id: str,
    run_id: str | None = None,
    module: str | None = None,
    period: str | None = None,
    now: datetime | None = None,
) -> str:
    """The store key a sensor scope names (see ``cost/budget.py`` for the key formats)."""
    from airflow_agent_provider.cost.budget import (
        day_scope,
        module_scope,
        month_scope,
        run_scope,
        utc_day,
        utc_month,
    )

    now = now or datetime.now(timezone.utc)
    if scope == "run":
        if not run_id:
            raise ValueError("scope 'run' needs a run_id")
        return run_scope(dag_id, run_id)
    if scope == "module":
        if not run_id or not module:
            raise ValueError("scope 'module' needs a run_id and a module")
        return module_scope(dag_id, run_id, module)
    if scope == "workflow_day":
        return day_scope(dag_id, period or utc_day(now))
    if scope == "workflow_month":
        return month_scope(dag_id, period or utc_month(now))
    raise ValueError(f"unknown budget scope {scope!r}; expected one of {', '.join(SCOPES)}")


@dataclass(frozen=True)
class BudgetCheck:
    """What a check found; ``to_dict`` is what the sensor pushes to XCom."""

    ok: bool
    scope_key: str
    spent: float
    reserved: float
    spend: float
    max_spend_usd: float
    required_usd: float | None
    remaining: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_budget(
    store: BudgetStore,
    key: str,
    max_spend_usd: float,
    required_usd: float | None = None,
    include_reserved: bool = True,
) -> BudgetCheck:
    """
    Without ``required_usd``: ok when spend is below ``max_spend_usd``.
    With it: ok when the room left (``max_spend_usd - spend``) covers ``required_usd``.
    """
    if max_spend_usd is None or math.isnan(max_spend_usd) or max_spend_usd < 0:
        raise ValueError(f"max_spend_usd must be a non-negative number, got {max_spend_usd!r}")
    totals = store.budget_totals(key)
    spend = totals.spent + (totals.reserved if include_reserved else 0.0)
    remaining = max(max_spend_usd - spend, 0.0)
    if required_usd is None:
        ok = spend < max_spend_usd
        wanted = f"below ${max_spend_usd:.6f}"
    else:
        ok = max_spend_usd - spend >= required_usd
        wanted = f"leaving ${required_usd:.6f} of ${max_spend_usd:.6f}"
    message = (
        f"{key}: spend ${spend:.6f} (settled ${totals.spent:.6f}"
        + (f", reserved ${totals.reserved:.6f}" if include_reserved else "")
        + f"), ${remaining:.6f} left; wanted {wanted}: {'ok' if ok else 'not yet'}"
    )
    return BudgetCheck(
        ok, key, totals.spent, totals.reserved, spend, max_spend_usd, required_usd, remaining, message
    )
