"""
Rate-limit operations of the Redis store (see stores/limits_api.py); the scripts are in ``limits_lua``.

Each operation is one Lua script (one round trip) that reads ``TIME`` on the server: every worker
shares that one clock, and the check-and-take is atomic. Each operation is split into building the
script call and reading its answer, so the sync operation and its async twin (redis-py's asyncio
client) run the same script with the same arguments and read the same answer.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import Any

from airflow_agent_provider.stores.limits_api import Grant, LimitsBackend, Tier
from airflow_agent_provider.stores.redis.connection import LuaScript, RedisConnection, ScriptArg
from airflow_agent_provider.stores.redis.limits_lua import PAUSED, PENALIZE, SETTLE, acquire_source

_US = 1_000_000


def _us(seconds: float) -> int:
    return round(seconds * _US)


@lru_cache(maxsize=256)
def _policy(tiers: tuple[Tier, ...], lease: bool) -> tuple[LuaScript, tuple[str, ...]]:
    """(script, tier names) for one policy; cached because a worker repeats its policies."""
    spec = tuple((t.unit, t.limit, _us(t.window_s)) for t in tiers)
    script = LuaScript("rl_acquire:" + repr((spec, lease)), acquire_source(spec, lease))
    return script, tuple(t.name for t in tiers)


def _reason(reason: int | bytes | str, names: tuple[str, ...]) -> str:
    """A refused call's reason: a tier's position in the policy, or a word the script returns."""
    if isinstance(reason, int):
        return names[reason - 1]
    return reason.decode() if isinstance(reason, bytes) else reason


def _grant(res: list[Any], gid: str, names: tuple[str, ...]) -> Grant:
    at = res[1] / _US
    if res[0]:
        return Grant(True, gid, 0.0, at, None)
    wait_us, reason = res[2], res[3]
    wait = math.inf if wait_us < 0 else wait_us / _US
    return Grant(False, None, wait, at, _reason(reason, names))


def _paused(res: list[Any]) -> float | None:
    pause, now = int(res[0]), int(res[1])
    return pause / _US if pause > now else None


class RedisLimits(LimitsBackend):
    """Sliding-window logs, leases and pauses on the shared Redis server (sync and asyncio)."""

    def __init__(self, conn: RedisConnection) -> None:
        self._conn = conn

    def _acquire_call(
        self,
        key: str,
        tiers: tuple[Tier, ...],
        tokens: int,
        max_concurrent: int | None,
        lease_ttl_s: float,
        now: float | None,
    ) -> tuple[LuaScript, tuple[str, str, str], list[ScriptArg], str, tuple[str, ...]]:
        """(script, keys, args, grant id, tier names) of one acquire."""
        gid = os.urandom(12).hex()  # 96 random bits; cheaper than uuid4 on the client
        script, names = _policy(tiers, max_concurrent is not None)
        args: list[ScriptArg] = ["" if now is None else _us(now), tokens, gid]
        if max_concurrent is not None:
            args += [max_concurrent, _us(lease_ttl_s)]
        return script, self._conn.keys.rate_limit(key), args, gid, names

    def acquire(
        self,
        key: str,
        tiers: tuple[Tier, ...],
        tokens: int,
        max_concurrent: int | None,
        lease_ttl_s: float,
        now: float | None,
    ) -> Grant:
        script, keys, args, gid, names = self._acquire_call(
            key, tiers, tokens, max_concurrent, lease_ttl_s, now
        )
        return _grant(self._conn.run(script, keys, args), gid, names)

    async def aacquire(
        self,
        key: str,
        tiers: tuple[Tier, ...],
        tokens: int,
        max_concurrent: int | None,
        lease_ttl_s: float,
        now: float | None,
    ) -> Grant:
        script, keys, args, gid, names = self._acquire_call(
            key, tiers, tokens, max_concurrent, lease_ttl_s, now
        )
        return _grant(await self._conn.arun(script, keys, args), gid, names)

    # -- settle, release -----------------------------------------------------------------------

    def settle(self, key: str, grant_id: str, actual_tokens: int) -> int:
        keys = self._conn.keys.rate_limit(key)[:2]
        return int(self._conn.run(SETTLE, keys, [grant_id, actual_tokens]))

    async def asettle(self, key: str, grant_id: str, actual_tokens: int) -> int:
        keys = self._conn.keys.rate_limit(key)[:2]
        return int(await self._conn.arun(SETTLE, keys, [grant_id, actual_tokens]))

    def release(self, key: str, grant_id: str) -> bool:
        # A single ZREM is atomic by itself; no script needed.
        lease = self._conn.keys.rate_limit(key)[2]
        return bool(self._conn.call(lambda c: c.zrem(lease, grant_id)))

    async def arelease(self, key: str, grant_id: str) -> bool:
        lease = self._conn.keys.rate_limit(key)[2]
        return bool(await self._conn.acall(lambda c: c.zrem(lease, grant_id)))

    # -- pauses, clock -------------------------------------------------------------------------

    def _penalize_call(
        self, key: str, until: float | None, delay_s: float | None
    ) -> tuple[list[str], list[ScriptArg]]:
        args: list[ScriptArg] = [_us(until), ""] if until is not None else ["", _us(delay_s or 0.0)]
        return [self._conn.keys.rate_limit(key)[1]], args

    def penalize(self, key: str, until: float | None, delay_s: float | None) -> float:
        keys, args = self._penalize_call(key, until, delay_s)
        return int(self._conn.run(PENALIZE, keys, args)) / _US

    async def apenalize(self, key: str, until: float | None, delay_s: float | None) -> float:
        keys, args = self._penalize_call(key, until, delay_s)
        return int(await self._conn.arun(PENALIZE, keys, args)) / _US

    def paused_until(self, key: str) -> float | None:
        return _paused(self._conn.run(PAUSED, [self._conn.keys.rate_limit(key)[1]]))

    async def apaused_until(self, key: str) -> float | None:
        return _paused(await self._conn.arun(PAUSED, [self._conn.keys.rate_limit(key)[1]]))

    def store_time(self) -> float:
        return self._conn.server_time()

    async def astore_time(self) -> float:
        return await self._conn.aserver_time()
