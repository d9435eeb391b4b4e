"""
Budgets that are never overshot: reserve the most a call can cost, settle at the real cost.

``BudgetGuard.reserve`` is called before every model call with the call's maximum cost
(``pricing.max_call_cost``). It takes that amount against every scope the call belongs to (agent,
module, run, workflow day, workflow month) in one atomic store operation, or raises
``BudgetExceeded`` naming the scope that has no room. After the call, ``Reservation.settle`` charges
the real price and writes the ledger entry; ``Reservation.release`` frees the amount when the call
did not happen. Scopes without a limit are still charged, so spend is tracked everywhere.

Why a reservation id from the caller: it names the logical call (for example
``dag:run:task:step``), so a retried task that reserves and settles the same step again is neither
refused for its own earlier reservation nor charged twice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from airflow_agent_provider.cost.pricing import CallCost, unknown_price_warning
from airflow_agent_provider.exceptions import (
    BudgetError as BudgetError,
    BudgetExceeded as BudgetExceeded,
    UnpricedModelError as UnpricedModelError,
)

if TYPE_CHECKING:  # the stores load with the first call, not when a DAG builds its agents' limits
    from airflow_agent_provider.llm.types import Usage
    from airflow_agent_provider.stores.budget_api import BudgetStore, LedgerEntry, ReserveResult

# -- scope keys ----------------------------------------------------------------------------------


def run_scope(dag_id: str, run_id: str) -> str:
    return f"run:{dag_id}:{run_id}"


def module_scope(dag_id: str, run_id: str, module: str) -> str:
    return f"module:{dag_id}:{run_id}:{module}"


def agent_scope(dag_id: str, run_id: str, module: str, agent: str) -> str:
    return f"agent:{dag_id}:{run_id}:{module}.{agent}"


def day_scope(dag_id: str, day: str) -> str:
    """``day`` is a UTC date ``YYYY-MM-DD``."""
    return f"day:{dag_id}:{day}"


def month_scope(dag_id: str, month: str) -> str:
    """``month`` is a UTC month ``YYYY-MM``."""
    return f"month:{dag_id}:{month}"


def utc_day(at: datetime) -> str:
    return _utc(at).strftime("%Y-%m-%d")


def utc_month(at: datetime) -> str:
    return _utc(at).strftime("%Y-%m")


def _utc(at: datetime) -> datetime:
    # A naive timestamp is taken as UTC, which is what Airflow hands out.
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


# -- errors --------------------------------------------------------------------------------------


# -- call description and limits -----------------------------------------------------------------


@dataclass(frozen=True)
class CallScope:
    """Who makes a call and when: the scopes it is charged to derive from this."""

    dag_id: str
    run_id: str
    module: str
    agent: str
    model: str
    provider: str
    #: When the call happens (UTC); decides the day and month scopes. Defaults to now.
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def day(self) -> str:
        return utc_day(self.at)

    @property
    def month(self) -> str:
        return utc_month(self.at)

    @property
    def agent_key(self) -> str:
        return agent_scope(self.dag_id, self.run_id, self.module, self.agent)

    @property
    def module_key(self) -> str:
        return module_scope(self.dag_id, self.run_id, self.module)

    @property
    def run_key(self) -> str:
        return run_scope(self.dag_id, self.run_id)

    @property
    def day_key(self) -> str:
        return day_scope(self.dag_id, self.day)

    @property
    def month_key(self) -> str:
        return month_scope(self.dag_id, self.month)


@dataclass(frozen=True)
class BudgetLimits:
    """
    USD limits that apply to a call, named as in the workflow definition; None means no limit.

    ``agent_cost_limit`` is the agent's ``cost_limit`` (per run), ``module_cost_budget`` the
    module's ``cost_budget`` (per run), ``run_cost_budget`` the workflow's ``cost_budget`` (per run),
    ``daily_budget``/``monthly_budget`` the workflow's per UTC day / month.
    """

    agent_cost_limit: float | None = None
    module_cost_budget: float | None = None
    run_cost_budget: float | None = None
    daily_budget: float | None = None
    monthly_budget: float | None = None

    def __post_init__(self) -> None:
        for name, value in self._named():
            if value is not None and (math.isnan(value) or value < 0):
                raise ValueError(f"{name} must be a non-negative number of USD, got {value!r}")

    def _named(self) -> list[tuple[str, float | None]]:
        return [
            ("agent_cost_limit", self.agent_cost_limit),
            ("module_cost_budget", self.module_cost_budget),
            ("run_cost_budget", self.run_cost_budget),
            ("daily_budget", self.daily_budget),
            ("monthly_budget", self.monthly_budget),
        ]

    @property
    def any(self) -> bool:
        return any(value is not None for _, value in self._named())

    def scopes(self, call: CallScope) -> list[tuple[str, float]]:
        """Every scope of the call with its limit (``inf`` when unset: tracked, never refused)."""
        keys = [call.agent_key, call.module_key, call.run_key, call.day_key, call.month_key]
        return [
            (key, math.inf if value is None else float(value)) for key, (_, value) in zip(keys, self._named())
        ]


# -- guard and reservation -----------------------------------------------------------------------


class Reservation:
    """Budget held for one call until it is settled or released."""

    def __init__(
        self,
        store: BudgetStore,
        call: CallScope,
        reservation_id: str,
        amount_usd: float | None,
        result: ReserveResult,
    ) -> None:
        self.store = store
        self.call = call
        self.reservation_id = reservation_id
        #: The amount held; None when the call is unpriced and unbudgeted (nothing held).
        self.amount_usd = amount_usd
        self.result = result
        self.settled = False
        self.released = False

    def settle(self, cost: CallCost, usage: Usage, delivery: str = "realtime") -> bool:
        """
        Charge the real cost to every scope and write the ledger entry.

        Settling an id that was already settled (for example by an earlier try of the task)
        charges nothing and returns False. An unknown cost is recorded in the ledger as unknown.
        ``delivery`` marks the entry ``batch`` when the call went through a provider batch API.
        """
        charged = self.store.budget_settle(
            self.reservation_id, cost.usd, [self._entry(cost, usage, delivery)], scopes=self._scope_keys()
        )
        self.settled = True
        return charged

    async def asettle(self, cost: CallCost, usage: Usage) -> bool:
        """:meth:`settle` without blocking the event loop (triggers)."""
        charged = await self.store.abudget_settle(
            self.reservation_id, cost.usd, [self._entry(cost, usage)], scopes=self._scope_keys()
        )
        self.settled = True
        return charged

    def release(self) -> bool:
        """Free the held amount: the call did not happen (or failed before the provider charged)."""
        self.released = True
        return self.store.budget_release(self.reservation_id)

    async def arelease(self) -> bool:
        """:meth:`release` without blocking the event loop (triggers)."""
        self.released = True
        return await self.store.abudget_release(self.reservation_id)

    def _scope_keys(self) -> list[str]:
        return [key for key, _ in BudgetLimits().scopes(self.call)]

    def _entry(self, cost: CallCost, usage: Usage, delivery: str = "realtime") -> LedgerEntry:
        from airflow_agent_provider.stores.budget_api import LedgerEntry

        return LedgerEntry(
            entry_id=self.reservation_id,
            reservation_id=self.reservation_id,
            dag_id=self.call.dag_id,
            run_id=self.call.run_id,
            module=self.call.module,
            agent=self.call.agent,
            model=self.call.model,
            provider=self.call.provider,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            usd=cost.usd,
            price_source=cost.source,
            delivery=delivery,
        )

    def __repr__(self) -> str:
        return f"Reservation({self.reservation_id!r}, amount_usd={self.amount_usd!r})"


class BudgetGuard:
    """Reserves before a call and settles after it, against the shared store."""

    def __init__(self, store: BudgetStore) -> None:
        self.store = store

    def reserve(
        self,
        call: CallScope,
        amount_usd: float | None,
        limits: BudgetLimits,
        *,
        reservation_id: str,
        ttl_s: float = 900,
    ) -> Reservation:
        """
        Hold ``amount_usd`` (the call's maximum cost) in every scope of ``call`` or raise.

        ``amount_usd=None`` means the model's price is unknown: allowed only when no budget applies
        (its cost is then recorded as unknown), otherwise ``UnpricedModelError``. ``ttl_s`` bounds
        how long a reservation of a worker that died keeps counting.
        """
        amount = self._amount(call, amount_usd, limits)
        result = self.store.budget_reserve(reservation_id, limits.scopes(call), amount, ttl_s)
        return self._reservation(call, reservation_id, amount_usd, amount, result)

    async def areserve(
        self,
        call: CallScope,
        amount_usd: float | None,
        limits: BudgetLimits,
        *,
        reservation_id: str,
        ttl_s: float = 900,
    ) -> Reservation:
        """:meth:`reserve` without blocking the event loop (triggers); same checks, same errors."""
        amount = self._amount(call, amount_usd, limits)
        result = await self.store.abudget_reserve(reservation_id, limits.scopes(call), amount, ttl_s)
        return self._reservation(call, reservation_id, amount_usd, amount, result)

    @staticmethod
    def _amount(call: CallScope, amount_usd: float | None, limits: BudgetLimits) -> float:
        if amount_usd is None:
            if limits.any:
                set_limits = ", ".join(
                    f"{name}={value}" for name, value in limits._named() if value is not None
                )
                raise UnpricedModelError(
                    f"cannot run {call.module}.{call.agent} under a budget ({set_limits}): "
                    + unknown_price_warning(call.provider, call.model)
                )
            return 0.0
        if math.isnan(amount_usd) or amount_usd < 0:
            raise ValueError(f"amount_usd must be a non-negative number, got {amount_usd!r}")
        return amount_usd

    def _reservation(
        self,
        call: CallScope,
        reservation_id: str,
        amount_usd: float | None,
        amount: float,
        result: ReserveResult,
    ) -> Reservation:
        if not result.granted:
            raise BudgetExceeded(
                result.refused_scope or "?", result.limit, result.spent, result.reserved, amount
            )
        return Reservation(self.store, call, reservation_id, amount_usd, result)


def remaining(limit: float | None, spent: float, reserved: float = 0.0) -> float:
    """Room left in a scope; ``inf`` when it has no limit."""
    return math.inf if limit is None else max(limit - spent - reserved, 0.0)


__all__: Sequence[str] = [
    "BudgetError",
    "BudgetExceeded",
    "BudgetGuard",
    "BudgetLimits",
    "CallScope",
    "Reservation",
    "UnpricedModelError",
    "agent_scope",
    "day_scope",
    "module_scope",
    "month_scope",
    "remaining",
    "run_scope",
]
