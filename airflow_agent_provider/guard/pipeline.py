"""
One model call, guarded: budget, breaker, rate limits, retries, fallbacks, cost, in that order.

For each target (the primary model, then its fallbacks):

1. **Budget** — reserve the most the call can cost (an upper bound of the input tokens plus
   ``max_tokens`` at the model's price) in every budget scope at once; if any would be exceeded the
   call is not made and :class:`~airflow_agent_provider.cost.budget.BudgetExceeded` (permanent)
   is raised. This is why budgets are never overshot: the check happens before the money is spent.
2. **Circuit breaker** — when the target's breaker is open, the call fails fast and the next target
   is tried (see :mod:`airflow_agent_provider.resilience.fallback`).
3. **Rate limits** — every matching rule grants a permit (requests and tokens of every tier, and a
   concurrency lease) before each attempt; waiting sleeps exactly as long as the store says.
4. **Call with retries** — transient errors are retried with backoff that honours ``retry-after``
   (tenacity, :mod:`airflow_agent_provider.resilience.retrying`); a 429's ``retry-after`` also pauses
   the shared limiter for every worker, and successful responses' rate-limit headers feed it too.
5. **Settle** — the permits' token estimate is corrected to the real usage, the leases released,
   and the budget reservation settled at the real price (or released if the call failed), which
   writes the ledger entry (:mod:`.settlement`: reservation ids are per task try and step, and
   settling is idempotent, so one successful call is charged exactly once).

This module is the orchestration; the money side is :mod:`.settlement`, the token estimates
:mod:`.estimates`, the records it returns :mod:`.records`. The caller supplies
``call_target(target, request)`` (the hook call), so this stays Airflow-free;
``GuardedCaller.call`` and ``GuardedCaller.acall`` share everything but the waiting.

The caller may also supply ``prepare_target(target)``: what must happen before a request can be
sent (read the connection, import the SDK, build the client; seconds on a cold worker). It runs in
each attempt *before* the permits are taken, so the time between a permit and the request reaching
the provider is only the request itself: the limiter's window margin covers that, not an import.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.cost.budget import BudgetExceeded
from airflow_agent_provider.exceptions import PermanentError, UnsettledCharge
from airflow_agent_provider.guard.estimates import (
    PER_MESSAGE_OVERHEAD_TOKENS,
    max_input_tokens,
    request_chars,
    typical_input_tokens,
)
from airflow_agent_provider.guard.records import GuardedResult, PendingCharge
from airflow_agent_provider.guard.settlement import BEFORE_SETTLE, Settlement, Tally
from airflow_agent_provider.limits.limiter import Permit, RateLimiter
from airflow_agent_provider.observability import metrics
from airflow_agent_provider.resilience.breaker import CircuitBreaker
from airflow_agent_provider.resilience.classify import classify
from airflow_agent_provider.resilience.fallback import (
    FallbackAttempt,
    FallbackTarget,
    acall_with_fallbacks,
    call_with_fallbacks,
)
from airflow_agent_provider.resilience.retrying import acall_with_retries, call_with_retries

if TYPE_CHECKING:
    from airflow_agent_provider.guard.config import GuardConfig
    from airflow_agent_provider.llm.types import LLMRequest, LLMResponse
    from airflow_agent_provider.stores.base import Store

log = logging.getLogger(__name__)


class _AlreadyPaid(PermanentError):
    """Raised instead of calling another target once a response was paid for (never leaves this module)."""


class GuardedCaller:
    """
    Make guarded model calls for one agent task instance.

    :param store: The shared store (limits, budgets, breaker state).
    :param config: What applies to the calls, bound to the run (:meth:`GuardConfig.for_run`).
    """

    def __init__(self, store: Store, config: GuardConfig) -> None:
        if not (config.dag_id and config.run_id):
            raise ValueError("GuardedCaller needs a GuardConfig bound to a run (GuardConfig.for_run)")
        self.store = store
        self.config = config
        self.limiter = RateLimiter(store)
        self.settlement = Settlement(store, config)

    # -- shared steps -------------------------------------------------------------------------

    def targets(self, request: LLMRequest, llm_conn_id: str | None) -> list[FallbackTarget]:
        primary = FallbackTarget(request.provider, request.model, llm_conn_id)
        return [primary, *self.config.fallbacks]

    def _breaker_for(self) -> Callable[[FallbackTarget], CircuitBreaker] | None:
        config = self.config.breaker
        if config is None:
            return None
        return lambda target: CircuitBreaker(self.store, target.key, config)

    def _tokens(self, request: LLMRequest) -> int:
        return typical_input_tokens(request) + request.max_tokens

    @staticmethod
    def _request_for(target: FallbackTarget, request: LLMRequest) -> LLMRequest:
        return (
            request
            if (target.provider, target.model) == (request.provider, request.model)
            else replace(request, provider=target.provider, model=target.model)
        )

    def _after_success(self, permits: list[Permit], response: LLMResponse) -> None:
        for permit in permits:
            permit.settle(response.usage.total_tokens)
            self.limiter.observe_headers(permit.key, response.rate_limit_headers)

    def _after_failure(self, permits: list[Permit], exc: BaseException) -> None:
        info = classify(exc)
        for permit in permits:
            # A rejected request consumed no tokens; a 429 also tells everyone to slow down.
            permit.settle(0)
            if info.status_code == 429 and info.retry_after_s:
                self.limiter.pause(permit.key, info.retry_after_s)

    async def _aafter_success(self, permits: list[Permit], response: LLMResponse) -> None:
        for permit in permits:
            await permit.asettle(response.usage.total_tokens)
            await self.limiter.aobserve_headers(permit.key, response.rate_limit_headers)

    async def _aafter_failure(self, permits: list[Permit], exc: BaseException) -> None:
        info = classify(exc)
        for permit in permits:
            await permit.asettle(0)
            if info.status_code == 429 and info.retry_after_s:
                await self.limiter.apause(permit.key, info.retry_after_s)

    @staticmethod
    def _observe(result: GuardedResult) -> None:
        """Metrics of a finished call (no-ops unless Airflow's statsd/OTel metrics are on)."""
        for attempt in result.attempts:
            if attempt.get("outcome") == "circuit_open":
                target = attempt.get("target") or {}
                metrics.record_breaker_open(target.get("provider", "?"), target.get("model", "?"))
        metrics.record_call(
            result.target.provider,
            result.target.model,
            metrics.OUTCOME_OK,
            result.response.usage,
            result.cost.usd,
            result.wait_s,
            result.requests,
        )

    @staticmethod
    def _observe_failure(request: LLMRequest, exc: BaseException, tally: Tally) -> None:
        if isinstance(exc, BudgetExceeded):
            metrics.record_budget_refused(exc.scope)
        outcome = "budget_refused" if isinstance(exc, BudgetExceeded) else classify(exc).reason or "error"
        metrics.record_call(
            request.provider, request.model, outcome, None, None, tally.wait_s, tally.requests
        )

    def _paid_after_failure(self, request: LLMRequest, exc: Exception, tally: Tally) -> list[FallbackAttempt]:
        """A failure of the fallback loop: re-raised, unless a response was paid (then it is settled)."""
        if tally.paid is None:
            self._observe_failure(request, exc, tally)
            raise exc
        # Paid, then the store failed (the breaker's bookkeeping): settle what was paid for.
        log.warning("The store failed after a paid response (%s: %s); settling it", type(exc).__name__, exc)
        return []

    # -- sync ---------------------------------------------------------------------------------

    def call(
        self,
        request: LLMRequest,
        *,
        step_id: str,
        llm_conn_id: str | None,
        call_target: Callable[[FallbackTarget, LLMRequest], LLMResponse],
        on_paid: Callable[[PendingCharge], Any] | None = None,
        prepare_target: Callable[[FallbackTarget], Any] | None = None,
    ) -> GuardedResult:
        """
        Make one logical model call (``step_id`` must be unique per task try and step).

        ``on_paid(pending)`` runs once the response is in, before settlement (persist it there).
        """
        tally = Tally()

        def attempt(target: FallbackTarget, req: LLMRequest) -> LLMResponse:
            if prepare_target is not None:
                prepare_target(target)  # before any permit (module docstring)
            with ExitStack() as stack:
                permits = []
                for rule in self.config.rules_for(target):
                    permit = self.limiter.acquire(
                        rule.key, rule.policy, self._tokens(req), timeout=self.config.rate_limit_timeout_s
                    )
                    stack.enter_context(permit)
                    tally.wait_s += permit.wait_s
                    permits.append(permit)
                tally.requests += 1
                try:
                    response = call_target(target, req)
                except BaseException as exc:
                    self._after_failure(permits, exc)
                    raise
                self._after_success(permits, response)
                return response

        def call_one(target: FallbackTarget) -> None:
            if tally.paid is not None:  # a paid response exists: never call (and pay) another target
                raise _AlreadyPaid()
            req = self._request_for(target, request)
            reservation = self.settlement.reserve(target, req, step_id)
            try:
                response = call_with_retries(lambda: attempt(target, req), self.config.call_retries)
            except BaseException:
                reservation.release()
                raise
            tally.paid = (response, self.settlement.price(target, response), reservation, target)

        try:
            _, _, attempts = call_with_fallbacks(
                self.targets(request, llm_conn_id), call_one, self._breaker_for()
            )
        except Exception as exc:
            attempts = self._paid_after_failure(request, exc, tally)
        pending = self.settlement.pending(tally, attempts)
        self.settlement.note_paid(pending, on_paid)
        assert tally.paid is not None  # noqa: S101  # pending() raised otherwise
        result = self.settlement.settle(tally.paid[2], pending)
        self._observe(result)
        return result

    def settle_pending(self, pending: PendingCharge) -> GuardedResult:
        """Settle a paid response of an earlier try (charged exactly once; see :mod:`.settlement`)."""
        return self.settlement.settle_pending(pending)

    # -- async (triggers) ---------------------------------------------------------------------

    async def acall(
        self,
        request: LLMRequest,
        *,
        step_id: str,
        llm_conn_id: str | None,
        call_target: Callable[[FallbackTarget, LLMRequest], Awaitable[LLMResponse]],
        on_paid: Callable[[PendingCharge], Any] | None = None,
        prepare_target: Callable[[FallbackTarget], Awaitable[Any]] | None = None,
    ) -> GuardedResult:
        """:meth:`call` for the triggerer's event loop, on the stores' async operations (nothing blocks the loop)."""
        tally = Tally()

        async def attempt(target: FallbackTarget, req: LLMRequest) -> LLMResponse:
            if prepare_target is not None:
                await prepare_target(target)  # before any permit (module docstring)
            permits: list[Permit] = []
            try:
                for rule in self.config.rules_for(target):
                    permit = await self.limiter.aacquire(
                        rule.key, rule.policy, self._tokens(req), timeout=self.config.rate_limit_timeout_s
                    )
                    tally.wait_s += permit.wait_s
                    permits.append(permit)
                tally.requests += 1
                try:
                    response = await call_target(target, req)
                except BaseException as exc:
                    await self._aafter_failure(permits, exc)
                    raise
                await self._aafter_success(permits, response)
                return response
            finally:
                for permit in permits:
                    await permit.arelease()

        async def acall_one(target: FallbackTarget) -> None:
            if tally.paid is not None:  # a paid response exists: never call (and pay) another target
                raise _AlreadyPaid()
            req = self._request_for(target, request)
            reservation = await self.settlement.areserve(target, req, step_id)

            async def one_attempt() -> LLMResponse:  # a coroutine function, as tenacity requires
                return await attempt(target, req)

            try:
                response = await acall_with_retries(one_attempt, self.config.call_retries)
            except BaseException:
                await reservation.arelease()
                raise
            tally.paid = (response, self.settlement.price(target, response), reservation, target)

        try:
            _, _, attempts = await acall_with_fallbacks(
                self.targets(request, llm_conn_id), acall_one, self._breaker_for()
            )
        except Exception as exc:
            attempts = self._paid_after_failure(request, exc, tally)
        pending = self.settlement.pending(tally, attempts)
        self.settlement.note_paid(pending, on_paid)
        assert tally.paid is not None  # noqa: S101  # pending() raised otherwise
        result = await self.settlement.asettle(tally.paid[2], pending)
        self._observe(result)
        return result

    async def asettle_pending(self, pending: PendingCharge) -> GuardedResult:
        """:meth:`settle_pending` on the store's async operations (the event loop never blocks)."""
        return await self.settlement.asettle_pending(pending)


__all__ = [
    "BEFORE_SETTLE",
    "PER_MESSAGE_OVERHEAD_TOKENS",
    "GuardedCaller",
    "GuardedResult",
    "PendingCharge",
    "UnsettledCharge",
    "max_input_tokens",
    "request_chars",
    "typical_input_tokens",
]
