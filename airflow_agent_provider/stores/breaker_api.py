"""
Store operations for the circuit breaker (see base.Store).

Why the breaker state lives in the store: a provider outage is seen by every worker at once, so the
breaker must be shared. If each process kept its own, a fleet of 50 agents would each have to fail N
times before it stopped calling a dead endpoint, and no process would know when a trial call proved
the endpoint healthy again.

The state machine, per key (``provider/model`` or ``provider``)::

    closed --(failure_threshold failures within window_s)--> open
    open   --(reset_timeout_s elapsed)--------------------> half_open   (taken by the next allow)
    half_open --(a trial succeeds)--> closed
    half_open --(a trial fails)-----> open                               (a new reset_timeout_s)

In half-open at most ``half_open_max_calls`` trial calls run at once. A trial is a lease with an
expiry (``trial_timeout_s``) so that a worker killed during its trial cannot wedge the breaker in
half-open forever. Every operation is atomic across processes and measured by one clock (the
Redis server's ``TIME``; the machine clock for SQLite, whose users all share one machine).

:class:`BreakerStore` is what callers use: it checks every argument once (``stores.checks``) and
hands the checked values to the store's :class:`BreakerBackend` (SQLite, Redis).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

# A plain value type in a leaf module, so that building a DAG (which builds every agent's guard
# configuration) does not import the stores.
from airflow_agent_provider.resilience.breaker_config import BreakerConfig as BreakerConfig
from airflow_agent_provider.stores import checks
from airflow_agent_provider.stores.offload import run_blocking

BreakerStateName = Literal["closed", "open", "half_open"]

CLOSED: BreakerStateName = "closed"
OPEN: BreakerStateName = "open"
HALF_OPEN: BreakerStateName = "half_open"


@dataclass(frozen=True)
class BreakerDecision:
    """The answer to "may I call now?"."""

    allowed: bool
    #: The state the decision was taken in.
    state: BreakerStateName
    #: When not allowed: seconds until asking again makes sense. 0 when allowed.
    retry_in_s: float = 0.0
    #: When admitted as a half-open trial: the lease to hand back to ``breaker_record``/``breaker_release``.
    trial_id: str | None = None


class BreakerBackend(ABC):
    """
    The breaker operations one backend implements; every argument arrives checked.

    The async twins default to the sync operation on the stores' thread pool; a backend with an
    asyncio client overrides them.
    """

    @abstractmethod
    def allow(self, key: str, cfg: BreakerConfig) -> BreakerDecision:
        """See :meth:`BreakerStore.breaker_allow`."""

    @abstractmethod
    def record(self, key: str, success: bool, cfg: BreakerConfig, trial_id: str | None) -> BreakerStateName:
        """See :meth:`BreakerStore.breaker_record`."""

    @abstractmethod
    def release(self, key: str, trial_id: str) -> None:
        """See :meth:`BreakerStore.breaker_release`."""

    @abstractmethod
    def state(self, key: str) -> BreakerStateName:
        """See :meth:`BreakerStore.breaker_state`."""

    @abstractmethod
    def reset(self, key: str) -> None:
        """See :meth:`BreakerStore.breaker_reset`."""

    async def aallow(self, key: str, cfg: BreakerConfig) -> BreakerDecision:
        """Async :meth:`allow`."""
        return await run_blocking(self.allow, key, cfg)

    async def arecord(
        self, key: str, success: bool, cfg: BreakerConfig, trial_id: str | None
    ) -> BreakerStateName:
        """Async :meth:`record`."""
        return await run_blocking(self.record, key, success, cfg, trial_id)

    async def arelease(self, key: str, trial_id: str) -> None:
        """Async :meth:`release`."""
        await run_blocking(self.release, key, trial_id)

    async def astate(self, key: str) -> BreakerStateName:
        """Async :meth:`state`."""
        return await run_blocking(self.state, key)

    async def areset(self, key: str) -> None:
        """Async :meth:`reset`."""
        await run_blocking(self.reset, key)


def _check_allow(key: str, cfg: BreakerConfig) -> None:
    checks.text("key", key)
    checks.instance("cfg", cfg, BreakerConfig)


def _check_record(key: str, success: bool, cfg: BreakerConfig, trial_id: str | None) -> None:
    checks.text("key", key)
    checks.flag("success", success)
    checks.instance("cfg", cfg, BreakerConfig)
    checks.optional_text("trial_id", trial_id)


def _check_trial(key: str, trial_id: str) -> None:
    checks.text("key", key)
    checks.text("trial_id", trial_id)


class BreakerStore:
    """
    Circuit-breaker state shared by every worker and triggerer.

    Reads never write: ``breaker_state`` reports an open breaker whose timeout has passed as
    ``half_open`` without persisting anything (no write lock, no stored transition); only
    ``breaker_allow`` moves the stored state from open to half-open, when it admits the first trial.
    Each method checks its arguments (the same contract on every backend) and delegates to the
    store's :class:`BreakerBackend`. Async twins (``a`` prefix) serve the triggerer: the sync
    operation on the stores' thread pool (SQLite), natively async in the Redis store.
    """

    #: Set by the concrete store (``Store.__init__``).
    _breaker: BreakerBackend

    def breaker_allow(self, key: str, cfg: BreakerConfig) -> BreakerDecision:
        """
        Decide atomically whether a call for ``key`` may go ahead.

        Closed: always allowed. Open: refused with the time left until half-open. Half-open: admitted
        as a trial (a lease with ``trial_id``) while fewer than ``half_open_max_calls`` trials run.
        """
        _check_allow(key, cfg)
        return self._breaker.allow(key, cfg)

    def breaker_record(
        self, key: str, success: bool, cfg: BreakerConfig, *, trial_id: str | None = None
    ) -> BreakerStateName:
        """
        Record the outcome of a call atomically and return the state after it.

        A failure while closed is added to the window and opens the breaker at the threshold; any
        outcome while half-open decides it (success closes, failure re-opens). Outcomes of calls that
        were in flight when the breaker opened are ignored while it is open.
        """
        _check_record(key, success, cfg, trial_id)
        return self._breaker.record(key, success, cfg, trial_id)

    def breaker_release(self, key: str, trial_id: str) -> None:
        """
        Give back a half-open trial slot without an outcome (the call failed for a reason that says
        nothing about the provider's health, e.g. a 400 for a bad prompt).
        """
        _check_trial(key, trial_id)
        self._breaker.release(key, trial_id)

    def breaker_state(self, key: str) -> BreakerStateName:
        """The current state of ``key`` (``closed`` for a key never seen); changes nothing."""
        return self._breaker.state(checks.text("key", key))

    def breaker_reset(self, key: str) -> None:
        """Forget everything about ``key`` (operator's escape hatch; also used by tests)."""
        self._breaker.reset(checks.text("key", key))

    # -- async twins (same contract, same checks) -------------------------------------------------

    async def abreaker_allow(self, key: str, cfg: BreakerConfig) -> BreakerDecision:
        """Async :meth:`breaker_allow`."""
        _check_allow(key, cfg)
        return await self._breaker.aallow(key, cfg)

    async def abreaker_record(
        self, key: str, success: bool, cfg: BreakerConfig, *, trial_id: str | None = None
    ) -> BreakerStateName:
        """Async :meth:`breaker_record`."""
        _check_record(key, success, cfg, trial_id)
        return await self._breaker.arecord(key, success, cfg, trial_id)

    async def abreaker_release(self, key: str, trial_id: str) -> None:
        """Async :meth:`breaker_release`."""
        _check_trial(key, trial_id)
        await self._breaker.arelease(key, trial_id)

    async def abreaker_state(self, key: str) -> BreakerStateName:
        """Async :meth:`breaker_state`."""
        return await self._breaker.astate(checks.text("key", key))

    async def abreaker_reset(self, key: str) -> None:
        """Async :meth:`breaker_reset`."""
        await self._breaker.areset(checks.text("key", key))
