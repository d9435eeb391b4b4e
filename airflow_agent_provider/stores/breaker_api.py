"""
Abstract store operations for the circuit breaker (see base.Store).

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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

from airflow_agent_provider.stores.offload import run_blocking

BreakerStateName = Literal["closed", "open", "half_open"]

CLOSED: BreakerStateName = "closed"
OPEN: BreakerStateName = "open"
HALF_OPEN: BreakerStateName = "half_open"


@dataclass(frozen=True)
class BreakerConfig:
    """How sensitive a breaker is. Every caller of one key should use the same values."""

    #: Failures within ``window_s`` that open the breaker.
    failure_threshold: int = 5
    #: Sliding window, in seconds, over which failures are counted.
    window_s: float = 60.0
    #: How long the breaker stays open before it lets trial calls through.
    reset_timeout_s: float = 30.0
    #: Trial calls admitted at once while half-open.
    half_open_max_calls: int = 1
    #: A trial not reported within this time no longer holds its half-open slot.
    trial_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.half_open_max_calls < 1:
            raise ValueError("half_open_max_calls must be at least 1")
        for name in ("window_s", "reset_timeout_s", "trial_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


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


class BreakerStore(ABC):
    """
    Circuit-breaker state shared by every worker and triggerer.

    Reads never write: ``breaker_state`` reports an open breaker whose timeout has passed as
    ``half_open`` without persisting anything (no write lock, no stored transition); only
    ``breaker_allow`` moves the stored state from open to half-open, when it admits the first trial.
    Async twins (``a`` prefix) serve the triggerer: by default the sync operation on the stores'
    thread pool (SQLite), natively async in the Redis store.
    """

    @abstractmethod
    def breaker_allow(self, key: str, cfg: BreakerConfig) -> BreakerDecision:
        """
        Decide atomically whether a call for ``key`` may go ahead.

        Closed: always allowed. Open: refused with the time left until half-open. Half-open: admitted
        as a trial (a lease with ``trial_id``) while fewer than ``half_open_max_calls`` trials run.
        """

    @abstractmethod
    def breaker_record(
        self, key: str, success: bool, cfg: BreakerConfig, *, trial_id: str | None = None
    ) -> BreakerStateName:
        """
        Record the outcome of a call atomically and return the state after it.

        A failure while closed is added to the window and opens the breaker at the threshold; any
        outcome while half-open decides it (success closes, failure re-opens). Outcomes of calls that
        were in flight when the breaker opened are ignored while it is open.
        """

    @abstractmethod
    def breaker_release(self, key: str, trial_id: str) -> None:
        """
        Give back a half-open trial slot without an outcome (the call failed for a reason that says
        nothing about the provider's health, e.g. a 400 for a bad prompt).
        """

    @abstractmethod
    def breaker_state(self, key: str) -> BreakerStateName:
        """The current state of ``key`` (``closed`` for a key never seen); changes nothing."""

    @abstractmethod
    def breaker_reset(self, key: str) -> None:
        """Forget everything about ``key`` (operator's escape hatch; also used by tests)."""

    # -- async twins (same contract; see the class docstring) ------------------------------------

    async def abreaker_allow(self, key: str, cfg: BreakerConfig) -> BreakerDecision:
        """Async :meth:`breaker_allow`."""
        return await run_blocking(self.breaker_allow, key, cfg)

    async def abreaker_record(
        self, key: str, success: bool, cfg: BreakerConfig, *, trial_id: str | None = None
    ) -> BreakerStateName:
        """Async :meth:`breaker_record`."""
        return await run_blocking(self.breaker_record, key, success, cfg, trial_id=trial_id)

    async def abreaker_release(self, key: str, trial_id: str) -> None:
        """Async :meth:`breaker_release`."""
        await run_blocking(self.breaker_release, key, trial_id)

    async def abreaker_state(self, key: str) -> BreakerStateName:
        """Async :meth:`breaker_state`."""
        return await run_blocking(self.breaker_state, key)

    async def abreaker_reset(self, key: str) -> None:
        """Async :meth:`breaker_reset`."""
        await run_blocking(self.breaker_reset, key)
