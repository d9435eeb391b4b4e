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

from airflow_agent_provider.stores.breaker_api import (
    BreakerConfig,
    BreakerDecision,
    BreakerStateName,
)

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
_ALLOW = (
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
"""
)

# ARGV: 1 success (1/0), 2 failure_threshold, 3 window_s, 4 reset_timeout_s, 5 ttl
_RECORD = (
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
"""
)

# Read-only: no write, no expiry touched (the plugin's GET and the UI call it).
_STATE = _READ + "\nreturn state\n"


def _ttl(cfg: BreakerConfig) -> int:
    """Idle seconds after which a breaker's keys may be forgotten: well past any window or lease."""
    return math.ceil(2 * max(cfg.window_s, cfg.reset_timeout_s + cfg.trial_timeout_s)) + 60


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decision(res: list) -> BreakerDecision:
    allowed, state, retry_in, trial_id = res
    return BreakerDecision(
        allowed=bool(allowed),
        state=_text(state),  # type: ignore[arg-type]
        retry_in_s=max(0.0, float(_text(retry_in))),
        trial_id=_text(trial_id) or None,
    )


def _allow_args(cfg: BreakerConfig) -> list[object]:
    return [cfg.half_open_max_calls, cfg.trial_timeout_s, cfg.reset_timeout_s, _ttl(cfg)]


def _record_args(success: bool, cfg: BreakerConfig) -> list[object]:
    return ["1" if success else "0", cfg.failure_threshold, cfg.window_s, cfg.reset_timeout_s, _ttl(cfg)]


class RedisBreakerMixin:
    """Breaker state in Redis, one Lua script per operation (sync, and async twins with an ``a``)."""

    def _breaker_keys(self, key: str) -> list[str]:
        tag = "{" + key + "}"
        return [
            self._key("breaker", tag),  # type: ignore[attr-defined]
            self._key("breaker", tag, "failures"),  # type: ignore[attr-defined]
            self._key("breaker", tag, "trials"),  # type: ignore[attr-defined]
        ]

    def breaker_allow(self, key: str, cfg: BreakerConfig) -> BreakerDecision:
        script = self._script("breaker_allow", _ALLOW)  # type: ignore[attr-defined]
        return _decision(script(keys=self._breaker_keys(key), args=_allow_args(cfg)))

    async def abreaker_allow(self, key: str, cfg: BreakerConfig) -> BreakerDecision:
        script = self._ascript("breaker_allow", _ALLOW)  # type: ignore[attr-defined]
        return _decision(await script(keys=self._breaker_keys(key), args=_allow_args(cfg)))

    def breaker_record(
        self, key: str, success: bool, cfg: BreakerConfig, *, trial_id: str | None = None
    ) -> BreakerStateName:
        script = self._script("breaker_record", _RECORD)  # type: ignore[attr-defined]
        return _text(script(keys=self._breaker_keys(key), args=_record_args(success, cfg)))  # type: ignore[return-value]

    async def abreaker_record(
        self, key: str, success: bool, cfg: BreakerConfig, *, trial_id: str | None = None
    ) -> BreakerStateName:
        script = self._ascript("breaker_record", _RECORD)  # type: ignore[attr-defined]
        return _text(await script(keys=self._breaker_keys(key), args=_record_args(success, cfg)))  # type: ignore[return-value]

    def breaker_release(self, key: str, trial_id: str) -> None:
        with self._guard():  # type: ignore[attr-defined]
            self._redis.zrem(self._breaker_keys(key)[2], trial_id)  # type: ignore[attr-defined]

    async def abreaker_release(self, key: str, trial_id: str) -> None:
        with self._guard():  # type: ignore[attr-defined]
            await self._aclient().zrem(self._breaker_keys(key)[2], trial_id)  # type: ignore[attr-defined]

    def breaker_state(self, key: str) -> BreakerStateName:
        script = self._script("breaker_state", _STATE)  # type: ignore[attr-defined]
        return _text(script(keys=self._breaker_keys(key), args=[]))  # type: ignore[return-value]

    async def abreaker_state(self, key: str) -> BreakerStateName:
        script = self._ascript("breaker_state", _STATE)  # type: ignore[attr-defined]
        return _text(await script(keys=self._breaker_keys(key), args=[]))  # type: ignore[return-value]

    def breaker_reset(self, key: str) -> None:
        with self._guard():  # type: ignore[attr-defined]
            self._redis.delete(*self._breaker_keys(key))  # type: ignore[attr-defined]

    async def abreaker_reset(self, key: str) -> None:
        with self._guard():  # type: ignore[attr-defined]
            await self._aclient().delete(*self._breaker_keys(key))  # type: ignore[attr-defined]
