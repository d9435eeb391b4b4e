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
   writes the ledger entry. Reservation ids are per task try and step, and settling is idempotent,
   so one successful call is charged exactly once.

Why settlement happens after the fallback loop, and what "no lost charges" means: once a response
has arrived it has been paid for, whatever happens to the store next. The caller is handed a
:class:`PendingCharge` (``on_paid``) *before* settlement, to persist it (the operator writes it to
``task_state_store``); if the store then fails, :class:`UnsettledCharge` (transient) carries the
same record, no fallback target is tried and the model is not called again. A retry settles the
pending record's reservation id with :meth:`GuardedCaller.settle_pending` — the store charges an
id that expired or was never reserved, and charges an id only once — so the spend reaches the
ledger exactly once.

The caller supplies ``call_target(target, request)`` (the hook call), so this module stays
Airflow-free; ``GuardedCaller.call`` and ``GuardedCaller.acall`` share everything but the waiting.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from airflow_agent_provider.cost.budget import (
    BudgetExceeded,
    BudgetGuard,
    BudgetLimits,
    CallScope,
    Reservation,
)
from airflow_agent_provider.cost.estimate import estimate_input_tokens
from airflow_agent_provider.cost.pricing import CallCost, PriceOverride, max_call_cost, price_call
from airflow_agent_provider.exceptions import PermanentError, UnsettledCharge as UnsettledCharge
from airflow_agent_provider.guard.config import GuardConfig
from airflow_agent_provider.limits.limiter import Permit, RateLimiter
from airflow_agent_provider.llm.types import LLMRequest, LLMResponse
from airflow_agent_provider.observability import metrics
from airflow_agent_provider.resilience.breaker import CircuitBreaker
from airflow_agent_provider.resilience.classify import classify
from airflow_agent_provider.resilience.fallback import (
    FallbackTarget,
    acall_with_fallbacks,
    call_with_fallbacks,
)
from airflow_agent_provider.resilience.retrying import (
    CallRetryPolicy,
    acall_with_retries,
    call_with_retries,
)
from airflow_agent_provider.stores.base import Store
from airflow_agent_provider.stores.breaker_api import BreakerConfig

log = logging.getLogger(__name__)

#: Tokens a provider adds per message (role markers, separators) beyond its text.
PER_MESSAGE_OVERHEAD_TOKENS = 8


def _input_texts(request: LLMRequest) -> list[str]:
    """What the provider counts as input: system prompt, messages, tool calls, tool schemas."""
    texts = [request.system or ""]
    for message in request.messages:
        texts.append(message.content or "")
        texts.extend(call.name + json.dumps(call.arguments) for call in message.tool_calls)
    texts.extend(tool.name + tool.description + json.dumps(tool.parameters) for tool in request.tools)
    if request.output_schema:
        texts.append(json.dumps(request.output_schema))
    return texts


def request_chars(request: LLMRequest) -> int:
    return sum(len(text) for text in _input_texts(request))


def typical_input_tokens(request: LLMRequest) -> int:
    """
    The usual characters/4 estimate: what the shared tokens-per-minute limiter reserves.

    Settlement corrects it to the real usage seconds later, so a typical estimate is right there:
    reserving an upper bound would hold back other callers' tokens for nothing.
    """
    return estimate_input_tokens(request_chars(request)) + PER_MESSAGE_OVERHEAD_TOKENS * (
        len(request.messages) + 1
    )


def max_input_tokens(request: LLMRequest) -> int:
    """
    An upper bound of the input tokens: the UTF-8 bytes of the input, plus per-message overhead.

    Budget reservations use it because an estimate that is too low could let a budget be overshot
    (characters/4 holds for English, but one CJK character can be a whole token). Byte-level BPE
    tokenizers (OpenAI's, Anthropic's) never produce more tokens than bytes, so this bound holds
    whatever the language; settlement refunds the difference, so it costs only headroom.
    """
    return sum(len(text.encode("utf-8")) for text in _input_texts(request)) + PER_MESSAGE_OVERHEAD_TOKENS * (
        len(request.messages) + 1
    )


@dataclass
class GuardedResult:
    """The response and what it took to get it."""

    response: LLMResponse
    target: FallbackTarget
    cost: CallCost
    #: Seconds spent waiting for rate-limit permits, all attempts together.
    wait_s: float = 0.0
    #: Requests sent (1 + retries), all targets together.
    requests: int = 0
    #: What happened per target: ``[{"target": {...}, "outcome": "ok" | "circuit_open" | ...}]``.
    attempts: list[dict[str, Any]] = field(default_factory=list)
    #: Whether the budget ledger charged this call (False only for a duplicate settlement).
    charged: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "response": self.response.to_dict(),
            "target": self.target.to_dict(),
            "cost": {"usd": self.cost.usd, "source": self.cost.source, "warning": self.cost.warning},
            "wait_s": self.wait_s,
            "requests": self.requests,
            "attempts": self.attempts,
            "charged": self.charged,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuardedResult:
        return cls(
            response=LLMResponse.from_dict(data["response"]),
            target=FallbackTarget(**data["target"]),
            cost=CallCost(**data["cost"]),
            wait_s=data.get("wait_s", 0.0),
            requests=data.get("requests", 0),
            attempts=list(data.get("attempts") or []),
            charged=data.get("charged", True),
        )


@dataclass
class PendingCharge:
    """
    A paid response whose settlement has not been confirmed: all it takes to settle it later.

    JSON round-trippable (it is persisted in ``task_state_store`` and carried in trigger events).
    ``result.charged`` means nothing until it is settled.
    """

    reservation_id: str
    result: GuardedResult
    #: When the call was reserved (epoch seconds, UTC): decides its day and month scopes.
    at: float
    #: The amount the reservation held (None: unpriced and unbudgeted).
    amount_usd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reservation_id": self.reservation_id,
            "result": self.result.to_dict(),
            "at": self.at,
            "amount_usd": self.amount_usd,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingCharge:
        return cls(
            reservation_id=data["reservation_id"],
            result=GuardedResult.from_dict(data["result"]),
            at=float(data["at"]),
            amount_usd=data.get("amount_usd"),
        )


class _AlreadyPaid(PermanentError):
    """Raised instead of calling another target once a response was paid for (never leaves this module)."""


#: Test hooks: each is called with the :class:`PendingCharge` right before it is settled (tests make
#: the store go away there, to prove that a paid response is not lost). Empty in production.
BEFORE_SETTLE: list[Callable[[PendingCharge], Any]] = []


class _Tally:
    """Mutable counters of one guarded call (shared by its attempts)."""

    def __init__(self) -> None:
        self.wait_s = 0.0
        self.requests = 0
        self.charged = True
        #: (response, cost, reservation, target) of the paid call, once there is one.
        self.paid: tuple[LLMResponse, CallCost, Reservation, FallbackTarget] | None = None


class GuardedCaller:
    """
    Make guarded model calls for one agent task instance.

    :param store: The shared store (limits, budgets, breaker state).
    :param config: What applies to the calls (see :class:`GuardConfig`).
    """

    def __init__(self, store: Store, config: GuardConfig) -> None:
        self.store = store
        self.config = config
        self.limiter = RateLimiter(store)
        self.budget = BudgetGuard(store)
        self.retry_policy = CallRetryPolicy.from_mapping(config.call_retries)
        self.breaker_config = None if config.breaker is None else BreakerConfig(**config.breaker)
        self.override = PriceOverride.from_mapping(config.price_override) if config.price_override else None
        self.limits = BudgetLimits(
            agent_cost_limit=config.agent_cost_limit,
            module_cost_budget=config.module_cost_budget,
            run_cost_budget=config.run_cost_budget,
            daily_budget=config.daily_budget,
            monthly_budget=config.monthly_budget,
        )

    # -- shared steps -------------------------------------------------------------------------

    def targets(self, request: LLMRequest, llm_conn_id: str | None) -> list[FallbackTarget]:
        primary = FallbackTarget(request.provider, request.model, llm_conn_id)
        return [primary, *(FallbackTarget(t.provider, t.model, t.llm_conn_id) for t in self.config.fallbacks)]

    def _breaker_for(self, target: FallbackTarget) -> CircuitBreaker:
        return CircuitBreaker(self.store, target.key, self.breaker_config)

    def _scope(self, target: FallbackTarget, at: datetime | None = None) -> CallScope:
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
            target.provider, target.model, max_input_tokens(request), request.max_tokens, self.override
        )

    def _reserve(self, target: FallbackTarget, request: LLMRequest, step_id: str) -> Reservation:
        return self.budget.reserve(
            self._scope(target),
            self._amount(target, request),
            self.limits,
            reservation_id=f"{step_id}|{target.key}",
            ttl_s=self.config.reservation_ttl_s,
        )

    async def _areserve(self, target: FallbackTarget, request: LLMRequest, step_id: str) -> Reservation:
        return await self.budget.areserve(
            self._scope(target),
            self._amount(target, request),
            self.limits,
            reservation_id=f"{step_id}|{target.key}",
            ttl_s=self.config.reservation_ttl_s,
        )

    def _pending(self, tally: _Tally, attempts: list[Any]) -> PendingCharge:
        assert tally.paid is not None
        response, cost, reservation, target = tally.paid
        result = self._result(response, target, cost, tally, attempts)
        return PendingCharge(
            reservation.reservation_id, result, reservation.call.at.timestamp(), reservation.amount_usd
        )

    def _reservation_of(self, pending: PendingCharge) -> Reservation:
        """The reservation a pending charge was made under, to settle it (the store may not know it any more)."""
        from airflow_agent_provider.stores.budget_api import ReserveResult

        at = datetime.fromtimestamp(pending.at, timezone.utc)
        return Reservation(
            self.store,
            self._scope(pending.result.target, at),
            pending.reservation_id,
            pending.amount_usd,
            ReserveResult(True, None, 0.0, 0.0, float("inf")),
        )

    @staticmethod
    def _note_paid(pending: PendingCharge, on_paid: Callable[[PendingCharge], Any] | None) -> None:
        if on_paid is not None:
            try:
                on_paid(pending)
            except Exception as exc:
                log.warning("Could not persist the paid response before settling it: %s", exc)
        for hook in list(BEFORE_SETTLE):
            hook(pending)

    def settle_pending(self, pending: PendingCharge) -> GuardedResult:
        """
        Settle a paid response whose settlement did not happen (or was not confirmed) on an earlier try.

        Charged exactly once: an id the store already settled charges nothing (``charged`` False).
        """
        try:
            charged = self._reservation_of(pending).settle(pending.result.cost, pending.result.response.usage)
        except Exception as exc:
            raise UnsettledCharge(pending, exc) from exc
        log.info(
            "Settled the pending charge %s of an earlier try (charged: %s)", pending.reservation_id, charged
        )
        return replace(pending.result, charged=charged)

    def _price(self, target: FallbackTarget, response: LLMResponse) -> CallCost:
        cost = price_call(target.provider, response.model or target.model, response.usage, self.override)
        if not cost.known and response.model and response.model != target.model:
            cost = price_call(target.provider, target.model, response.usage, self.override)
        if cost.warning:
            log.warning("%s", cost.warning)
        return cost

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
    def _request_for(target: FallbackTarget, request: LLMRequest) -> LLMRequest:
        return (
            request
            if (target.provider, target.model) == (request.provider, request.model)
            else replace(request, provider=target.provider, model=target.model)
        )

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
    def _observe_failure(request: LLMRequest, exc: BaseException, tally: _Tally) -> None:
        if isinstance(exc, BudgetExceeded):
            metrics.record_budget_refused(exc.scope)
        outcome = "budget_refused" if isinstance(exc, BudgetExceeded) else classify(exc).reason or "error"
        metrics.record_call(
            request.provider, request.model, outcome, None, None, tally.wait_s, tally.requests
        )

    def _result(
        self,
        response: LLMResponse,
        target: FallbackTarget,
        cost: CallCost,
        tally: _Tally,
        attempts: list[Any],
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

    def _tokens(self, request: LLMRequest) -> int:
        return typical_input_tokens(request) + request.max_tokens

    # -- sync ---------------------------------------------------------------------------------

    def call(
        self,
        request: LLMRequest,
        *,
        step_id: str,
        llm_conn_id: str | None,
        call_target: Callable[[FallbackTarget, LLMRequest], LLMResponse],
        on_paid: Callable[[PendingCharge], Any] | None = None,
    ) -> GuardedResult:
        """
        Make one logical model call (``step_id`` must be unique per task try and step).

        ``on_paid(pending)`` runs once the response is in, before settlement (persist it there).
        """
        tally = _Tally()

        def attempt(target: FallbackTarget, req: LLMRequest) -> LLMResponse:
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
            reservation = self._reserve(target, req, step_id)
            try:
                response = call_with_retries(lambda: attempt(target, req), self.retry_policy)
            except BaseException:
                reservation.release()
                raise
            tally.paid = (response, self._price(target, response), reservation, target)

        breaker_for = self._breaker_for if self.breaker_config is not None else None
        attempts: list[Any]
        try:
            _, _, attempts = call_with_fallbacks(self.targets(request, llm_conn_id), call_one, breaker_for)
        except Exception as exc:
            if tally.paid is None:
                self._observe_failure(request, exc, tally)
                raise
            # Paid, then the store failed (the breaker's bookkeeping): settle what was paid for.
            log.warning(
                "The store failed after a paid response (%s: %s); settling it", type(exc).__name__, exc
            )
            attempts = []
        pending = self._pending(tally, attempts)
        self._note_paid(pending, on_paid)
        try:
            charged = tally.paid[2].settle(pending.result.cost, pending.result.response.usage)  # type: ignore[index]
        except Exception as exc:
            raise UnsettledCharge(pending, exc) from exc
        result = replace(pending.result, charged=charged)
        self._observe(result)
        return result

    # -- async (triggers) ---------------------------------------------------------------------

    async def acall(
        self,
        request: LLMRequest,
        *,
        step_id: str,
        llm_conn_id: str | None,
        call_target: Callable[[FallbackTarget, LLMRequest], Awaitable[LLMResponse]],
        on_paid: Callable[[PendingCharge], Any] | None = None,
    ) -> GuardedResult:
        """:meth:`call` for the triggerer's event loop, on the stores' async operations (nothing blocks the loop)."""
        tally = _Tally()

        async def attempt(target: FallbackTarget, req: LLMRequest) -> LLMResponse:
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
            reservation = await self._areserve(target, req, step_id)

            async def one_attempt() -> LLMResponse:  # a coroutine function, as tenacity requires
                return await attempt(target, req)

            try:
                response = await acall_with_retries(one_attempt, self.retry_policy)
            except BaseException:
                await reservation.arelease()
                raise
            tally.paid = (response, self._price(target, response), reservation, target)

        breaker_for = self._breaker_for if self.breaker_config is not None else None
        attempts: list[Any]
        try:
            _, _, attempts = await acall_with_fallbacks(
                self.targets(request, llm_conn_id), acall_one, breaker_for
            )
        except Exception as exc:
            if tally.paid is None:
                self._observe_failure(request, exc, tally)
                raise
            log.warning(
                "The store failed after a paid response (%s: %s); settling it", type(exc).__name__, exc
            )
            attempts = []
        pending = self._pending(tally, attempts)
        self._note_paid(pending, on_paid)
        try:
            charged = await tally.paid[2].asettle(pending.result.cost, pending.result.response.usage)  # type: ignore[index]
        except Exception as exc:
            raise UnsettledCharge(pending, exc) from exc
        result = replace(pending.result, charged=charged)
        self._observe(result)
        return result

    async def asettle_pending(self, pending: PendingCharge) -> GuardedResult:
        """:meth:`settle_pending` on the store's async operations (the event loop never blocks)."""
        try:
            charged = await self._reservation_of(pending).asettle(
                pending.result.cost, pending.result.response.usage
            )
        except Exception as exc:
            raise UnsettledCharge(pending, exc) from exc
        log.info(
            "Settled the pending charge %s of an earlier try (charged: %s)", pending.reservation_id, charged
        )
        return replace(pending.result, charged=charged)
