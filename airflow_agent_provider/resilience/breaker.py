"""
A circuit breaker per provider/model, shared by every worker through the store.

Why: when a provider is down, retries and task retries multiply the load on it and keep every agent
slot busy waiting. After ``failure_threshold`` transient failures within ``window_s`` the breaker
opens and calls fail fast with :class:`CircuitOpenError` (transient, with ``retry_in_s``) -- without a
request -- so agents can fall back to another model or let the task retry later. After
``reset_timeout_s`` a limited number of trial calls probe the provider; one success closes the breaker,
one failure opens it again. The state lives in the store (see ``stores/breaker_api.py``), so one
worker's evidence protects them all.

Only transient provider errors count as failures: a 400 caused by a bad prompt, a 401 or a budget
that ran out says nothing about the provider's health. Such an outcome is neutral; a half-open trial
that ends that way just gives its slot back.

Composition: retry inside the breaker (``breaker.call(lambda: call_with_retries(do_call, policy))``)
counts one failure per call that gave up; wrapping each attempt (``call_with_retries(lambda:
breaker.call(do_call), policy)``) counts every failed request and stops the retries as soon as the
breaker opens, because an open breaker's wait is usually longer than ``max_delay_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from airflow_agent_provider.exceptions import CircuitOpenError
from airflow_agent_provider.resilience.classify import classify
from airflow_agent_provider.stores.breaker_api import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerConfig,
    BreakerDecision,
    BreakerStateName,
)

if TYPE_CHECKING:
    from airflow_agent_provider.stores.breaker_api import BreakerStore

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "BreakerConfig",
    "BreakerDecision",
    "CircuitBreaker",
    "CircuitOpenError",
    "counts_as_failure",
]


def counts_as_failure(exc: BaseException) -> bool:
    """True for a transient provider error; False for permanent errors and for another breaker's refusal."""
    if isinstance(exc, CircuitOpenError) or not isinstance(exc, Exception):
        return False
    return classify(exc).transient


class CircuitBreaker:
    """The breaker of one key (``provider/model``), its state kept in ``store``."""

    def __init__(self, store: BreakerStore, key: str, config: BreakerConfig | None = None) -> None:
        self.store = store
        self.key = key
        self.config = config or BreakerConfig()

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.key!r}, {self.config!r})"

    @property
    def state(self) -> BreakerStateName:
        """The current state; a read that changes nothing (see ``stores/breaker_api.py``)."""
        return self.store.breaker_state(self.key)

    def allow(self) -> BreakerDecision:
        """Ask whether a call may go ahead now (a half-open admission is a trial to report back)."""
        return self.store.breaker_allow(self.key, self.config)

    def record_success(self, trial_id: str | None = None) -> BreakerStateName:
        return self.store.breaker_record(self.key, True, self.config, trial_id=trial_id)

    def record_failure(self, trial_id: str | None = None) -> BreakerStateName:
        state = self.store.breaker_record(self.key, False, self.config, trial_id=trial_id)
        if state == OPEN:
            log.warning("Circuit breaker %r is open", self.key)
        return state

    def record_error(self, exc: BaseException, trial_id: str | None = None) -> BreakerStateName | None:
        """Record ``exc`` as a failure if it is one; otherwise release the trial slot (if any)."""
        if counts_as_failure(exc):
            return self.record_failure(trial_id)
        if trial_id is not None:
            self.store.breaker_release(self.key, trial_id)
        return None

    def release(self, trial_id: str) -> None:
        """Give a half-open trial slot back without an outcome."""
        self.store.breaker_release(self.key, trial_id)

    def reset(self) -> None:
        """Forget the key's state (operator's escape hatch)."""
        self.store.breaker_reset(self.key)

    # -- async twins: the store's async operations, nothing blocks the event loop -----------------

    async def astate(self) -> BreakerStateName:
        """:attr:`state` for the event loop."""
        return await self.store.abreaker_state(self.key)

    async def aallow(self) -> BreakerDecision:
        """:meth:`allow` for the event loop."""
        return await self.store.abreaker_allow(self.key, self.config)

    async def arecord_success(self, trial_id: str | None = None) -> BreakerStateName:
        """:meth:`record_success` for the event loop."""
        return await self.store.abreaker_record(self.key, True, self.config, trial_id=trial_id)

    async def arecord_failure(self, trial_id: str | None = None) -> BreakerStateName:
        """:meth:`record_failure` for the event loop."""
        state = await self.store.abreaker_record(self.key, False, self.config, trial_id=trial_id)
        if state == OPEN:
            log.warning("Circuit breaker %r is open", self.key)
        return state

    async def arecord_error(self, exc: BaseException, trial_id: str | None = None) -> BreakerStateName | None:
        """:meth:`record_error` for the event loop."""
        if counts_as_failure(exc):
            return await self.arecord_failure(trial_id)
        if trial_id is not None:
            await self.store.abreaker_release(self.key, trial_id)
        return None

    async def arelease(self, trial_id: str) -> None:
        """:meth:`release` for the event loop."""
        await self.store.abreaker_release(self.key, trial_id)

    async def areset(self) -> None:
        """:meth:`reset` for the event loop."""
        await self.store.abreaker_reset(self.key)

    def _admit(self, decision: BreakerDecision) -> str | None:
        if not decision.allowed:
            raise CircuitOpenError(self.key, decision.retry_in_s, decision.state)
        return decision.trial_id

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` if the breaker allows it and record the outcome; raises ``CircuitOpenError``."""
        trial_id = self._admit(self.allow())
        try:
            result = fn()
        except BaseException as exc:
            self.record_error(exc, trial_id)
            raise
        self.record_success(trial_id)
        return result

    async def acall(self, afn: Callable[[], Awaitable[T]]) -> T:
        """Async twin of :meth:`call`, on the store's async operations (the loop never blocks)."""
        trial_id = self._admit(await self.aallow())
        try:
            result = await afn()
        except BaseException as exc:
            # Cancellation must still give a half-open trial slot back; shield the bookkeeping.
            await asyncio.shield(self.arecord_error(exc, trial_id))
            raise
        await self.arecord_success(trial_id)
        return result
