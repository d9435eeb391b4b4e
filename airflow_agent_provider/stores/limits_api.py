"""
Store operations for the limits engine (see base.Store).

A rate-limit *key* (``openai/gpt-5-mini``) owns one grant log shared by every worker. Each grant is
an entry ``(grant_id, time, tokens)``; a request tier counts the entries of its sliding window, a
token tier sums their tokens. Windows are exact (a log, not fixed buckets), because a provider that
counts over a rolling minute rejects the burst a fixed-bucket limiter lets through at a boundary.

One ``acquire`` checks *every* tier, the concurrency slots and the key's pause, and then either
takes all of them or none: taking tier by tier would let a refused call leave half its hits behind
and starve everybody else. A refusal says how long to wait: the earliest moment at which all
tiers could grant, if nobody else took anything in between.

Times are seconds since the epoch on the *store's* clock (the Redis server's ``TIME``, the SQLite
host's ``time.time()``), so every worker measures windows against one clock.

Two classes: :class:`RateLimitStore` is what callers use; it checks every argument once
(``stores.checks``) and hands the checked values to a :class:`LimitsBackend`, which is what the
SQLite and the Redis store each implement.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from airflow_agent_provider.stores import checks
from airflow_agent_provider.stores.offload import run_blocking

Unit = Literal["requests", "tokens"]

#: ``Grant.reason`` values other than a tier name.
REASON_CONCURRENCY = "concurrency"
REASON_PAUSED = "paused"


@dataclass(frozen=True)
class Tier:
    """One sliding-window limit: at most ``limit`` requests (or tokens) in any ``window_s`` seconds."""

    name: str
    limit: int
    window_s: float
    unit: Unit = "requests"

    def __post_init__(self) -> None:
        checks.text("tier name", self.name)
        if isinstance(self.limit, bool) or not isinstance(self.limit, int):
            raise TypeError(f"tier {self.name!r}: limit must be an integer, got {type(self.limit).__name__}")
        if self.limit < 1:
            raise ValueError(f"tier {self.name!r}: limit must be >= 1, got {self.limit!r}")
        if isinstance(self.window_s, bool) or not isinstance(self.window_s, (int, float)):
            raise TypeError(
                f"tier {self.name!r}: window_s must be a number, got {type(self.window_s).__name__}"
            )
        if not (self.window_s > 0 and math.isfinite(self.window_s)):
            raise ValueError(f"tier {self.name!r}: window_s must be > 0, got {self.window_s!r}")
        if self.unit not in ("requests", "tokens"):
            raise ValueError(f"tier {self.name!r}: unit must be 'requests' or 'tokens', got {self.unit!r}")


@dataclass(frozen=True)
class Grant:
    """
    The answer of one ``acquire``.

    ``granted``: everything was taken, ``grant_id`` names the log entry and the concurrency lease.
    Otherwise nothing was taken; ``wait_s`` is how long until every tier could grant (``math.inf``
    when the request can never be granted, e.g. more tokens than a token tier's limit) and
    ``reason`` names the tier that needs the longest wait (a tier name, ``"concurrency"`` or
    ``"paused"``). ``at`` is the store-clock time of the decision (the entry's time when granted).
    """

    granted: bool
    grant_id: str | None
    wait_s: float
    at: float
    reason: str | None = None

    @property
    def never(self) -> bool:
        return math.isinf(self.wait_s)


class LimitsBackend(ABC):
    """
    The rate-limit operations one backend implements; every argument arrives checked.

    ``tiers`` is a tuple (hashable: the Redis backend caches one script per policy), ``penalize``
    gets exactly one of ``until`` and ``delay_s``. The async twins default to the sync operation on
    the stores' thread pool (``stores.offload``); a backend with an asyncio client overrides them.
    """

    @abstractmethod
    def acquire(
        self,
        key: str,
        tiers: tuple[Tier, ...],
        tokens: int,
        max_concurrent: int | None,
        lease_ttl_s: float,
        now: float | None,
    ) -> Grant:
        """See :meth:`RateLimitStore.acquire`."""

    @abstractmethod
    def settle(self, key: str, grant_id: str, actual_tokens: int) -> int:
        """See :meth:`RateLimitStore.settle`."""

    @abstractmethod
    def release(self, key: str, grant_id: str) -> bool:
        """See :meth:`RateLimitStore.release`."""

    @abstractmethod
    def penalize(self, key: str, until: float | None, delay_s: float | None) -> float:
        """See :meth:`RateLimitStore.penalize`."""

    @abstractmethod
    def paused_until(self, key: str) -> float | None:
        """See :meth:`RateLimitStore.paused_until`."""

    @abstractmethod
    def store_time(self) -> float:
        """See :meth:`RateLimitStore.store_time`."""

    async def aacquire(
        self,
        key: str,
        tiers: tuple[Tier, ...],
        tokens: int,
        max_concurrent: int | None,
        lease_ttl_s: float,
        now: float | None,
    ) -> Grant:
        """Async :meth:`acquire`."""
        return await run_blocking(self.acquire, key, tiers, tokens, max_concurrent, lease_ttl_s, now)

    async def asettle(self, key: str, grant_id: str, actual_tokens: int) -> int:
        """Async :meth:`settle`."""
        return await run_blocking(self.settle, key, grant_id, actual_tokens)

    async def arelease(self, key: str, grant_id: str) -> bool:
        """Async :meth:`release`."""
        return await run_blocking(self.release, key, grant_id)

    async def apenalize(self, key: str, until: float | None, delay_s: float | None) -> float:
        """Async :meth:`penalize`."""
        return await run_blocking(self.penalize, key, until, delay_s)

    async def apaused_until(self, key: str) -> float | None:
        """Async :meth:`paused_until`."""
        return await run_blocking(self.paused_until, key)

    async def astore_time(self) -> float:
        """Async :meth:`store_time`."""
        return await run_blocking(self.store_time)


def check_tiers(tiers: object) -> tuple[Tier, ...]:
    """``tiers`` as a tuple when it is a list or tuple of :class:`Tier` (the argument contract)."""
    checked: list[Tier] = []
    for tier in checks.sequence("tiers", tiers):
        if not isinstance(tier, Tier):
            raise TypeError(f"tiers must hold Tier objects, got {type(tier).__name__}")
        checked.append(tier)
    return tuple(checked)


def _check_acquire(
    key: str,
    tiers: Sequence[Tier],
    tokens: int,
    max_concurrent: int | None,
    lease_ttl_s: float,
    now: float | None,
) -> tuple[str, tuple[Tier, ...], int, int | None, float, float | None]:
    return (
        checks.text("key", key),
        check_tiers(tiers),
        checks.whole("tokens", tokens, minimum=0),
        checks.optional_whole("max_concurrent", max_concurrent, minimum=1),
        checks.positive("lease_ttl_s", lease_ttl_s),
        checks.optional_number("now", now),
    )


def _check_grant(key: str, grant_id: str) -> None:
    checks.text("key", key)
    checks.text("grant_id", grant_id)


def _check_penalize(
    key: str, until: float | None, delay_s: float | None
) -> tuple[float | None, float | None]:
    checks.text("key", key)
    if (until is None) == (delay_s is None):
        raise ValueError("penalize needs exactly one of until or delay_s")
    if until is not None:
        return checks.number("until", until), None
    return None, checks.at_least("delay_s", delay_s, 0)


class RateLimitStore:
    """
    Shared sliding-window logs, concurrency leases and pauses; every method is atomic.

    The public side of the rate-limit store: each method checks its arguments (the same contract on
    every backend) and delegates to the store's :class:`LimitsBackend`. Each operation has an async
    twin (``a`` prefix) for the triggerer's event loop, checked the same way.
    """

    #: Set by the concrete store (``Store.__init__``).
    _limits: LimitsBackend

    def acquire(
        self,
        key: str,
        tiers: Sequence[Tier],
        tokens: int = 0,
        *,
        max_concurrent: int | None = None,
        lease_ttl_s: float = 600.0,
        now: float | None = None,
    ) -> Grant:
        """
        Take one grant of ``tokens`` from every tier and (when ``max_concurrent``) one lease, or nothing.

        ``tokens`` is an estimate reserved now and corrected by ``settle``. The lease expires by itself
        after ``lease_ttl_s`` so that a killed worker's slot comes back. ``now`` overrides the store
        clock (tests only).
        """
        return self._limits.acquire(*_check_acquire(key, tiers, tokens, max_concurrent, lease_ttl_s, now))

    def settle(self, key: str, grant_id: str, actual_tokens: int) -> int:
        """
        Replace a grant's reserved tokens by the actual count; returns the difference charged.

        A negative difference is a refund to every token window still holding the entry. A grant
        that has already left every window (or never existed) changes nothing and returns 0.
        """
        _check_grant(key, grant_id)
        return self._limits.settle(key, grant_id, checks.whole("actual_tokens", actual_tokens, minimum=0))

    def release(self, key: str, grant_id: str) -> bool:
        """Free a concurrency lease; True when it was still held. Idempotent."""
        _check_grant(key, grant_id)
        return self._limits.release(key, grant_id)

    def penalize(self, key: str, until: float | None = None, *, delay_s: float | None = None) -> float:
        """
        Make every acquirer of ``key`` wait until ``until`` (store clock) or ``delay_s`` from now.

        Used for provider feedback (``retry-after``, remaining 0). A pause only ever extends; the
        effective pause end is returned. ``delay_s`` is resolved against the store clock inside the
        atomic operation, which is why it exists next to ``until``.
        """
        return self._limits.penalize(key, *_check_penalize(key, until, delay_s))

    def paused_until(self, key: str) -> float | None:
        """The pause end of ``key`` when it is still paused, else None."""
        return self._limits.paused_until(checks.text("key", key))

    def store_time(self) -> float:
        """The clock every window is measured by (seconds since the epoch)."""
        return self._limits.store_time()

    # -- async twins (same contract, same checks) -------------------------------------------------

    async def aacquire(
        self,
        key: str,
        tiers: Sequence[Tier],
        tokens: int = 0,
        *,
        max_concurrent: int | None = None,
        lease_ttl_s: float = 600.0,
        now: float | None = None,
    ) -> Grant:
        """Async :meth:`acquire`."""
        return await self._limits.aacquire(
            *_check_acquire(key, tiers, tokens, max_concurrent, lease_ttl_s, now)
        )

    async def asettle(self, key: str, grant_id: str, actual_tokens: int) -> int:
        """Async :meth:`settle`."""
        _check_grant(key, grant_id)
        return await self._limits.asettle(
            key, grant_id, checks.whole("actual_tokens", actual_tokens, minimum=0)
        )

    async def arelease(self, key: str, grant_id: str) -> bool:
        """Async :meth:`release`."""
        _check_grant(key, grant_id)
        return await self._limits.arelease(key, grant_id)

    async def apenalize(self, key: str, until: float | None = None, *, delay_s: float | None = None) -> float:
        """Async :meth:`penalize`."""
        return await self._limits.apenalize(key, *_check_penalize(key, until, delay_s))

    async def apaused_until(self, key: str) -> float | None:
        """Async :meth:`paused_until`."""
        return await self._limits.apaused_until(checks.text("key", key))

    async def astore_time(self) -> float:
        """Async :meth:`store_time`."""
        return await self._limits.astore_time()
