"""
Blocking and async acquisition of multi-tier rate limits shared by every worker.

The store decides (atomically, for all tiers at once) and says how long to wait when it refuses;
the limiter sleeps exactly that long and asks again, so there is no busy loop and no drift between
workers' own ideas of the window. Concurrency is the exception: a slot usually comes back through
a ``release`` long before its lease would expire, so a refusal on concurrency is re-tried after at
most ``concurrency_poll_s``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from airflow_agent_provider.exceptions import (
    RateLimitImpossible as RateLimitImpossible,
    RateLimitTimeout as RateLimitTimeout,
)
from airflow_agent_provider.limits.headers import pause_seconds
from airflow_agent_provider.stores.limits_api import REASON_CONCURRENCY, Grant, RateLimitStore

if TYPE_CHECKING:
    from airflow_agent_provider.limits.policy import RateLimitPolicy

log = logging.getLogger(__name__)


def limit_key(provider: str, model: str | None = None, group: str | None = None) -> str:
    """
    ``openai``, ``openai/gpt-5-mini`` or ``openai/gpt-5-mini#batch``: the shared key of a limit.

    Mirrors the definition's ``rate_limits`` keys ("provider" or "provider/model"); ``group`` splits
    one model's limit between, e.g., separate API keys or projects.
    """
    provider = provider.strip().lower()
    if not provider:
        raise ValueError("limit_key needs a provider")
    key = provider if not model else f"{provider}/{model.strip()}"
    return f"{key}#{group}" if group else key


class Permit:
    """A granted acquisition: settle its tokens, release its concurrency slot (also on ``with`` exit)."""

    def __init__(
        self, store: RateLimitStore, key: str, grant: Grant, tokens: int, wait_s: float, holds_lease: bool
    ) -> None:
        self._store = store
        self.key = key
        if grant.grant_id is None:
            raise ValueError(f"{key}: a permit needs a granted acquisition (a grant id)")
        self.grant_id: str = grant.grant_id
        self.granted_at = grant.at
        self.tokens = tokens
        self.wait_s = wait_s
        self._holds_lease = holds_lease
        self.settled_tokens: int | None = None

    def settle(self, actual_tokens: int) -> int:
        """Correct the reserved estimate by the actual usage; returns the tokens charged (<0 = refund)."""
        delta = self._store.settle(self.key, self.grant_id, int(actual_tokens))
        self.settled_tokens = int(actual_tokens)
        return delta

    def release(self) -> None:
        """Free the concurrency slot now rather than at lease expiry. Safe to call twice."""
        if self._holds_lease:
            self._holds_lease = False
            self._store.release(self.key, self.grant_id)

    async def asettle(self, actual_tokens: int) -> int:
        """:meth:`settle` without blocking the event loop."""
        delta = await self._store.asettle(self.key, self.grant_id, int(actual_tokens))
        self.settled_tokens = int(actual_tokens)
        return delta

    async def arelease(self) -> None:
        """:meth:`release` without blocking the event loop. Safe to call twice."""
        if self._holds_lease:
            self._holds_lease = False
            await self._store.arelease(self.key, self.grant_id)

    def __enter__(self) -> Permit:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    async def __aenter__(self) -> Permit:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.arelease()

    def __repr__(self) -> str:
        return f"Permit(key={self.key!r}, grant_id={self.grant_id!r}, tokens={self.tokens}, wait_s={self.wait_s:.3f})"


class RateLimiter:
    """Takes permits from a shared store; one instance per process is enough."""

    def __init__(self, store: RateLimitStore, *, concurrency_poll_s: float = 0.25) -> None:
        self.store = store
        self.concurrency_poll_s = concurrency_poll_s

    def try_acquire(self, key: str, policy: RateLimitPolicy, tokens: int = 0) -> Permit | None:
        """One attempt: a permit, or None when refused right now."""
        grant = self._attempt(key, policy, tokens)
        return self._permit(key, policy, grant, tokens, 0.0) if grant.granted else None

    def acquire(
        self, key: str, policy: RateLimitPolicy, tokens: int = 0, *, timeout: float | None = None
    ) -> Permit:
        """Block until every tier of ``policy`` grants ``tokens`` (an estimate, settle it later)."""
        start = time.monotonic()
        while True:
            grant = self._attempt(key, policy, tokens)
            if grant.granted:
                return self._permit(key, policy, grant, tokens, time.monotonic() - start)
            time.sleep(self._next_sleep(key, grant, start, timeout))

    async def atry_acquire(self, key: str, policy: RateLimitPolicy, tokens: int = 0) -> Permit | None:
        """:meth:`try_acquire` for the event loop."""
        grant = await self._aattempt(key, policy, tokens)
        return self._permit(key, policy, grant, tokens, 0.0) if grant.granted else None

    async def aacquire(
        self, key: str, policy: RateLimitPolicy, tokens: int = 0, *, timeout: float | None = None
    ) -> Permit:
        """
        ``acquire`` for the event loop (triggers): the store's async operation, ``asyncio.sleep`` between tries.

        Nothing here blocks the loop: the Redis store answers through its asyncio client, the
        SQLite store on its own thread pool.
        """
        start = time.monotonic()
        while True:
            grant = await self._aattempt(key, policy, tokens)
            if grant.granted:
                return self._permit(key, policy, grant, tokens, time.monotonic() - start)
            await asyncio.sleep(self._next_sleep(key, grant, start, timeout))

    def observe_headers(self, key: str, headers: Mapping[str, str]) -> float | None:
        """Apply a provider's rate-limit headers to every worker of ``key``; returns the pause end."""
        delay = pause_seconds(headers) if headers else None
        if delay is None:
            return None
        until = self.store.penalize(key, delay_s=delay)
        log.info("rate limit %r paused for %.3fs by provider feedback", key, delay)
        return until

    async def aobserve_headers(self, key: str, headers: Mapping[str, str]) -> float | None:
        """:meth:`observe_headers` for the event loop."""
        delay = pause_seconds(headers) if headers else None
        if delay is None:
            return None
        until = await self.store.apenalize(key, delay_s=delay)
        log.info("rate limit %r paused for %.3fs by provider feedback", key, delay)
        return until

    def pause(self, key: str, seconds: float) -> float:
        """Make every acquirer of ``key`` wait ``seconds`` from now (store clock)."""
        return self.store.penalize(key, delay_s=seconds)

    async def apause(self, key: str, seconds: float) -> float:
        """:meth:`pause` for the event loop."""
        return await self.store.apenalize(key, delay_s=seconds)

    # -- internals ---------------------------------------------------------------------------

    def _attempt(self, key: str, policy: RateLimitPolicy, tokens: int) -> Grant:
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens}")
        grant = self.store.acquire(
            key, policy.tiers(), tokens, max_concurrent=policy.max_concurrent, lease_ttl_s=policy.lease_ttl_s
        )
        return self._checked(key, grant, tokens)

    async def _aattempt(self, key: str, policy: RateLimitPolicy, tokens: int) -> Grant:
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens}")
        grant = await self.store.aacquire(
            key, policy.tiers(), tokens, max_concurrent=policy.max_concurrent, lease_ttl_s=policy.lease_ttl_s
        )
        return self._checked(key, grant, tokens)

    @staticmethod
    def _checked(key: str, grant: Grant, tokens: int) -> Grant:
        if not grant.granted and math.isinf(grant.wait_s):
            raise RateLimitImpossible(
                f"rate limit {key!r}: {tokens} tokens can never be granted (limited by {grant.reason})"
            )
        return grant

    def _permit(self, key: str, policy: RateLimitPolicy, grant: Grant, tokens: int, waited: float) -> Permit:
        return Permit(self.store, key, grant, tokens, waited, policy.max_concurrent is not None)

    def _next_sleep(self, key: str, grant: Grant, start: float, timeout: float | None) -> float:
        wait = grant.wait_s
        if grant.reason == REASON_CONCURRENCY:
            wait = min(wait, self.concurrency_poll_s)
        if timeout is not None:
            left = timeout - (time.monotonic() - start)
            if grant.wait_s > left and (grant.reason != REASON_CONCURRENCY or left <= 0):
                raise RateLimitTimeout(key, timeout, grant.wait_s, grant.reason)
            wait = min(wait, max(left, 0.0))
        return wait
