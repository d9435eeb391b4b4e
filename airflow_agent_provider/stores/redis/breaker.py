"""
Circuit-breaker operations of the Redis store (see stores/breaker_api.py).

Each operation is one Lua script, so it is atomic on the server, and it reads the server's ``TIME``
so that workers on different machines agree on when a window ends or a breaker may half-open. Per
key there are three Redis keys sharing one hash tag (same cluster slot): a hash with the state, a
sorted set of failure times (the sliding window) and a sorted set of half-open trial leases scored by
their expiry. All three expire after a generous idle time, so a breaker nobody uses is forgotten.
"""

from __future__ import annotations

import math
from typing import Any, cast

from airflow_agent_provider.stores.breaker_api import (
    BreakerBackend,
    BreakerConfig,
    BreakerDecision,
    BreakerStateName,
)
from airflow_agent_provider.stores.redis.connection import LuaScript, RedisConnection, ScriptArg

# Shared prologue: the current time, the stored state, and the open -> half-open transition once the
# reset timeout has passed -- computed here, persisted only by allow (reads never write).
# KEYS: 1 state hash, 2 failures zset, 3 trials zset.
_READ = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
local lapsed = state == 'open' and now >= open_until
if lapsed then state = 'half_open' end
"""

_TOUCH = """
local function touch(ttl)
  for i = 1, 3 do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ttl) end
  end
end
"""

# ARGV: 1 half_open_max_calls, 2 trial_timeout_s, 3 reset_timeout_s, 4 ttl
_ALLOW = LuaScript(
    "breaker_allow",
    _READ
    + _TOUCH
    + """
if lapsed then
  redis.call('HSET', KEYS[1], 'state', 'half_open')
  redis.call('DEL', KEYS[3])
end
if state == 'closed' then return {1, 'closed', '0', ''} end
if state == 'open' then return {0, 'open', tostring(open_until - now), ''} end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[3]) < tonumber(ARGV[1]) then
  local id = tostring(redis.call('HINCRBY', KEYS[1], 'seq', 1))
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), id)
  touch(tonumber(ARGV[4]))
  return {1, 'half_open', '0', id}
end
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
return {0, 'half_open', tostring(math.min(tonumber(ARGV[3]), tonumber(first[2]) - now)), ''}
""",
)

# ARGV: 1 success (1/0), 2 failure_threshold, 3 window_s, 4 reset_timeout_s, 5 ttl
_RECORD = LuaScript(
    "breaker_record",
    _READ
    + _TOUCH
    + """
local success = ARGV[1] == '1'
local ttl = tonumber(ARGV[5])
if state == 'open' then return 'open' end
if state == 'half_open' then
  redis.call('DEL', KEYS[2], KEYS[3])
  if success then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'open_until', '0')
    touch(ttl)
    return 'closed'
  end
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', tostring(now + tonumber(ARGV[4])))
  touch(ttl)
  return 'open'
end
if success then return 'closed' end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
local id = tostring(redis.call('HINCRBY', KEYS[1], 'seq', 1))
redis.call('ZADD', KEYS[2], now, id)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', tostring(now + tonumber(ARGV[4])))
  touch(ttl)
  return 'open'
end
redis.call('HSET', KEYS[1], 'state', 'closed')
touch(ttl)
return 'closed'
""",
)

# Read-only: no write, no expiry touched (the plugin's GET and the UI call it).
_STATE = LuaScript("breaker_state", _READ + "\nreturn state\n")


def _ttl(cfg: BreakerConfig) -> int:
    """Idle seconds after which a breaker's keys may be forgotten: well past any window or lease."""
    return math.ceil(2 * max(cfg.window_s, cfg.reset_timeout_s + cfg.trial_timeout_s)) + 60


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _state(value: bytes | str) -> BreakerStateName:
    # The scripts return only the three state names.
    return cast("BreakerStateName", _text(value))


def _decision(res: list[Any]) -> BreakerDecision:
    allowed, state, retry_in, trial_id = res
    return BreakerDecision(
        allowed=bool(allowed),
        state=_state(state),
        retry_in_s=max(0.0, float(_text(retry_in))),
        trial_id=_text(trial_id) or None,
    )


def _allow_args(cfg: BreakerConfig) -> list[ScriptArg]:
    return [cfg.half_open_max_calls, cfg.trial_timeout_s, cfg.reset_timeout_s, _ttl(cfg)]


def _record_args(success: bool, cfg: BreakerConfig) -> list[ScriptArg]:
    return ["1" if success else "0", cfg.failure_threshold, cfg.window_s, cfg.reset_timeout_s, _ttl(cfg)]


class RedisBreaker(BreakerBackend):
    """Breaker state in Redis, one Lua script per operation (sync, and async twins with an ``a``)."""

    def __init__(self, conn: RedisConnection) -> None:
        self._conn = conn

    def allow(self, key: str, cfg: BreakerConfig) -> BreakerDecision:
        return _decision(self._conn.run(_ALLOW, self._conn.keys.breaker(key), _allow_args(cfg)))

    async def aallow(self, key: str, cfg: BreakerConfig) -> BreakerDecision:
        return _decision(await self._conn.arun(_ALLOW, self._conn.keys.breaker(key), _allow_args(cfg)))

    def record(self, key: str, success: bool, cfg: BreakerConfig, trial_id: str | None) -> BreakerStateName:
        return _state(self._conn.run(_RECORD, self._conn.keys.breaker(key), _record_args(success, cfg)))

    async def arecord(
        self, key: str, success: bool, cfg: BreakerConfig, trial_id: str | None
    ) -> BreakerStateName:
        return _state(
            await self._conn.arun(_RECORD, self._conn.keys.breaker(key), _record_args(success, cfg))
        )

    def release(self, key: str, trial_id: str) -> None:
        trials = self._conn.keys.breaker(key)[2]
        self._conn.call(lambda c: c.zrem(trials, trial_id))

    async def arelease(self, key: str, trial_id: str) -> None:
        trials = self._conn.keys.breaker(key)[2]
        await self._conn.acall(lambda c: c.zrem(trials, trial_id))

    def state(self, key: str) -> BreakerStateName:
        return _state(self._conn.run(_STATE, self._conn.keys.breaker(key)))

    async def astate(self, key: str) -> BreakerStateName:
        return _state(await self._conn.arun(_STATE, self._conn.keys.breaker(key)))

    def reset(self, key: str) -> None:
        keys = self._conn.keys.breaker(key)
        self._conn.call(lambda c: c.delete(*keys))

    async def areset(self, key: str) -> None:
        keys = self._conn.keys.breaker(key)
        await self._conn.acall(lambda c: c.delete(*keys))
