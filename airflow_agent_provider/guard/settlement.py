"""
The money side of a guarded call: reserve before it, price it, settle it after, exactly once.

Why settlement comes after the fallback loop, and what "no lost charges" means: once a response
has arrived it has been paid for, whatever happens to the store next. The caller is handed a
:class:`~.records.PendingCharge` (``on_paid``) *before* settlement, to persist it (the operator
writes it to ``task_state_store``); if the store then fails,
:class:`~airflow_agent_provider.exceptions.UnsettledCharge` (transient) carries the same record, no
fallback target is tried and the model is not called again. A retry settles the pending record's
reservation id with :meth:`Settlement.settle_pending` — the store charges an id that expired or was
never reserved, and charges an id only once — so the spend reaches the ledger exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.cost.budget import BudgetGuard, CallScope, Reservation
from airflow_agent_provider.cost.pricing import CallCost, max_call_cost, price_call
from airflow_agent_provider.exceptions import UnsettledCharge
from airflow_agent_provider.guard.estimates import max_input_tokens
from airflow_agent_provider.guard.records import GuardedResult, PendingCharge

if TYPE_CHECKING:
    from airflow_agent_provider.guard.config import GuardConfig
    from airflow_agent_provider.llm.types import LLMRequest, LLMResponse
    from airflow_agent_provider.resilience.fallback import FallbackAttempt, FallbackTarget
    from airflow_agent_provider.stores.base import Store

log = logging.getLogger(__name__)

#: Test hooks: each is called with the :class:`PendingCharge` right before it is settled (tests make
#: the store go away there, to prove that a paid response is not lost). Empty in production.
BEFORE_SETTLE: list[Callable[[PendingCharge], Any]] = []


class Tally:
    """Mutable counters of one guarded call (shared by its attempts and targets)."""

    def __init__(self) -> None:
        self.wait_s = 0.0
        self.requests = 0
        self.charged = True
        #: (response, cost, reservation, target) of the paid call, once there is one.
        self.paid: tuple[LLMResponse, CallCost, Reservation, FallbackTarget] | None = None


class Settlement:
    """Budget reservations, prices and settlement of one agent's calls (see the module docstring)."""

    def __init__(self, store: Store, config: GuardConfig) -> None:
        self.store = store
        self.config = config
        self.budget = BudgetGuard(store)

    def scope(self, target: FallbackTarget, at: datetime | None = None) -> CallScope:
        return CallScope(
            dag_id=self.config.dag_id,
            run_id=self.config.run_id,
            module=self.config.module,
            agent=self.config.agent,
            model=target.model,
            provider=target.provider,
            at=at or datetime.now(timezone.utc),
        )

    def _amount(self, target: FallbackTarget, request: LLMRequest) -> float | None:
        return max_call_cost(
            target.provider,
            target.model,
            max_input_tokens(request),
            request.max_tokens,
            self.config.price_override,
        )

    def reserve(self, target: FallbackTarget, request: LLMRequest, step_id: str) -> Reservation:
        """Hold the most the call can cost in every budget scope (BudgetExceeded when it does not fit)."""
        return self.budget.reserve(
            self.scope(target),
            self._amount(target, request),
            self.config.budgets,
            reservation_id=f"{step_id}|{target.key}",
            ttl_s=self.config.reservation_ttl_s,
        )

    async def areserve(self, target: FallbackTarget, request: LLMRequest, step_id: str) -> Reservation:
        return await self.budget.areserve(
            self.scope(target),
            self._amount(target, request),
            self.config.budgets,
            reservation_id=f"{step_id}|{target.key}",
            ttl_s=self.config.reservation_ttl_s,
        )

    def price(self, target: FallbackTarget, response: LLMResponse) -> CallCost:
        override = self.config.price_override
        cost = price_call(target.provider, response.model or target.model, response.usage, override)
        if not cost.known and response.model and response.model != target.model:
            cost = price_call(target.provider, target.model, response.usage, override)
        if cost.warning:
            log.warning("%s", cost.warning)
        return cost

    @staticmethod
    def result(
        response: LLMResponse,
        target: FallbackTarget,
        cost: CallCost,
        tally: Tally,
        attempts: Sequence[FallbackAttempt],
    ) -> GuardedResult:
        return GuardedResult(
            response=response,
            target=target,
            cost=cost,
            wait_s=round(tally.wait_s, 6),
            requests=tally.requests,
            attempts=[a.to_dict() for a in attempts],
            charged=tally.charged,
        )

    def pending(self, tally: Tally, attempts: Sequence[FallbackAttempt]) -> PendingCharge:
        """The paid call of ``tally`` as a record that can be settled now or on a later try."""
        if tally.paid is None:
            raise RuntimeError("nothing was paid for")
        response, cost, reservation, target = tally.paid
        result = self.result(response, target, cost, tally, attempts)
        return PendingCharge(
            reservation.reservation_id, result, reservation.call.at.timestamp(), reservation.amount_usd
        )

    @staticmethod
    def note_paid(pending: PendingCharge, on_paid: Callable[[PendingCharge], Any] | None) -> None:
        """Hand the paid response to the caller (to persist it) before it is settled."""
        if on_paid is not None:
            try:
                on_paid(pending)
            except Exception as exc:
                log.warning("Could not persist the paid response before settling it: %s", exc)
        for hook in list(BEFORE_SETTLE):
            hook(pending)

    def _reservation_of(self, pending: PendingCharge) -> Reservation:
        """The reservation a pending charge was made under, to settle it (the store may not know it any more)."""
        from airflow_agent_provider.stores.budget_api import ReserveResult

        at = datetime.fromtimestamp(pending.at, timezone.utc)
        return Reservation(
            self.store,
            self.scope(pending.result.target, at),
            pending.reservation_id,
            pending.amount_usd,
            ReserveResult(True, None, 0.0, 0.0, float("inf")),
        )

    @staticmethod
    def settle(reservation: Reservation, pending: PendingCharge) -> GuardedResult:
        """Settle a call that was just paid for (UnsettledCharge when the store fails)."""
        try:
            charged = reservation.settle(pending.result.cost, pending.result.response.usage)
        except Exception as exc:
            raise UnsettledCharge(pending, exc) from exc
        return replace(pending.result, charged=charged)

    @staticmethod
    async def asettle(reservation: Reservation, pending: PendingCharge) -> GuardedResult:
        try:
            charged = await reservation.asettle(pending.result.cost, pending.result.response.usage)
        except Exception as exc:
            raise UnsettledCharge(pending, exc) from exc
        return replace(pending.result, charged=charged)

    def settle_pending(self, pending: PendingCharge) -> GuardedResult:
        """
        Settle a paid response whose settlement did not happen (or was not confirmed) on an earlier try.

        Charged exactly once: an id the store already settled charges nothing (``charged`` False).
        """
        result = self.settle(self._reservation_of(pending), pending)
        log.info(
            "Settled the pending charge %s of an earlier try (charged: %s)",
            pending.reservation_id,
            result.charged,
        )
        return result

    async def asettle_pending(self, pending: PendingCharge) -> GuardedResult:
        """:meth:`settle_pending` on the store's async operations (the event loop never blocks)."""
        result = await self.asettle(self._reservation_of(pending), pending)
        log.info(
            "Settled the pending charge %s of an earlier try (charged: %s)",
            pending.reservation_id,
            result.charged,
        )
        return result


__all__ = ["BEFORE_SETTLE", "Settlement", "Tally"]
