"""Rate-limit operations of the Redis store (see stores/limits_api.py).

Per rate-limit key, four Redis keys share one hash tag (``{key}``) so that a cluster keeps them on
one slot, which a multi-key Lua script needs:

* ``log``   sorted set, grant id -> grant time (integer microseconds of the server clock);
* ``tok``   hash, grant id -> tokens (only while some token window is registered);
* ``meta``  hash: ``keep`` (longest window seen, the log's retention), ``tw`` (the registered token
  windows), ``c:<w>`` / ``s:<w>`` (per token window: cursor and running total), ``pause``;
* ``lease`` sorted set, grant id -> lease expiry.

Request windows are counted with ``ZCOUNT`` (O(log n)); token windows keep a running total that
each call moves forward over the entries that left the window, so neither grows with the size of a
day-long log. Each operation is one Lua script that reads ``TIME`` on the server: every worker
shares that one clock, and the check-and-take is atomic. Times are integer microseconds inside
the scripts (a Lua double keeps them exact; ``tostring`` would not, hence ``string.format('%d')``).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from functools import lru_cache

from airflow_agent_provider.stores.limits_api import Grant, Tier

_US = 1_000_000

# Shared preamble: the clock and the token-window bookkeeping.
_COMMON = r"""
local function now_us(arg)
  if arg ~= nil and arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function fmt(x) return string.format('%d', x) end

local function token_windows(meta, tw)
  local list = {}
  if tw == nil then tw = redis.call('HGET', meta, 'tw') end
  if tw then for w in string.gmatch(tw, '[^,]+') do list[#list + 1] = w end end
  return list
end

-- Sum of the tokens of the log entries whose time is in (lo, hi].
local function tokens_between(log, tok, lo, hi)
  local ids = redis.call('ZRANGEBYSCORE', log, '(' .. fmt(lo), fmt(hi))
  local sum = 0
  for i = 1, #ids, 1000 do
    local vals = redis.call('HMGET', tok, unpack(ids, i, math.min(i + 999, #ids)))
    for j = 1, #vals do sum = sum + (tonumber(vals[j]) or 0) end
  end
  return sum
end
"""

_ACQUIRE = _COMMON + r"""
local log, tok, meta, lease = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = now_us(ARGV[1])
local tokens = tonumber(ARGV[2])
local maxc = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local gid = ARGV[5]

-- ARGV[6]: one line per tier, "unit<TAB>limit<TAB>window_us<TAB>name" (fewer arguments to encode).
local tiers = {}
local head = redis.call('HMGET', meta, 'keep', 'tw', 'pause')
local keep = tonumber(head[1] or '0')
local newkeep = keep
for unit, limit, w, name in string.gmatch(ARGV[6], '([^\t\n]*)\t([^\t\n]*)\t([^\t\n]*)\t([^\n]*)\n') do
  local tier = {unit = unit, limit = tonumber(limit), w = tonumber(w), name = name}
  tiers[#tiers + 1] = tier
  if tier.w > newkeep then newkeep = tier.w end
end
if newkeep ~= keep then redis.call('HSET', meta, 'keep', fmt(newkeep)); keep = newkeep end

-- Register new token windows, then move every token window to now.
local tws = token_windows(meta, head[2])
local known = {}
for _, w in ipairs(tws) do known[w] = true end
local totals = {}
for _, tier in ipairs(tiers) do
  local w = fmt(tier.w)
  if tier.unit == 't' and not known[w] then
    local cutoff = now - tier.w
    local total = tokens_between(log, tok, cutoff, now + 1e12)
    redis.call('HSET', meta, 'c:' .. w, fmt(cutoff), 's:' .. w, fmt(total))
    tws[#tws + 1] = w
    known[w] = true
    redis.call('HSET', meta, 'tw', table.concat(tws, ','))
  end
end
for _, w in ipairs(tws) do
  local state = redis.call('HMGET', meta, 'c:' .. w, 's:' .. w)
  local cursor, total = tonumber(state[1]), tonumber(state[2])
  local cutoff = now - tonumber(w)
  if cutoff > cursor then
    total = total - tokens_between(log, tok, cursor, cutoff)
    redis.call('HSET', meta, 'c:' .. w, fmt(cutoff), 's:' .. w, fmt(total))
  end
  totals[w] = total
end

-- Prune what has left the longest window.
local old = now - keep
if keep > 0 then
  if #tws > 0 then
    local gone = redis.call('ZRANGEBYSCORE', log, '-inf', fmt(old))
    for i = 1, #gone, 1000 do redis.call('HDEL', tok, unpack(gone, i, math.min(i + 999, #gone))) end
  end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', fmt(old))
end

local wait, reason = 0, false
for _, tier in ipairs(tiers) do
  local cutoff = now - tier.w
  local tw = 0
  if tier.unit == 'r' then
    local c = redis.call('ZCOUNT', log, '(' .. fmt(cutoff), '+inf')
    if c + 1 > tier.limit then
      local rank = redis.call('ZCARD', log) - tier.limit
      local e = redis.call('ZRANGE', log, rank, rank, 'WITHSCORES')
      tw = tonumber(e[2]) + tier.w - now
    end
  else
    local total = totals[fmt(tier.w)]
    if tokens > tier.limit then
      tw = -1
    elseif total + tokens > tier.limit then
      local excess = total + tokens - tier.limit
      local freed, offset = 0, 0
      tw = tier.w
      while true do
        local ids = redis.call('ZRANGEBYSCORE', log, '(' .. fmt(cutoff), '+inf', 'WITHSCORES', 'LIMIT', offset, 200)
        if #ids == 0 then break end
        local done = false
        for i = 1, #ids, 2 do
          freed = freed + (tonumber(redis.call('HGET', tok, ids[i])) or 0)
          if freed >= excess then tw = tonumber(ids[i + 1]) + tier.w - now; done = true; break end
        end
        if done then break end
        offset = offset + 200
      end
    end
  end
  if tw < 0 then return {0, now, -1, tier.name} end
  if tw > wait then wait, reason = tw, tier.name end
end

redis.call('ZREMRANGEBYSCORE', lease, '-inf', fmt(now))
if maxc > 0 then
  local held = redis.call('ZCARD', lease)
  if held >= maxc then
    local first = redis.call('ZRANGE', lease, 0, 0, 'WITHSCORES')
    local tw = tonumber(first[2]) - now
    if tw > wait then wait, reason = tw, 'concurrency' end
  end
end

local pause = tonumber(head[3] or '0')
if pause - now > wait then wait, reason = pause - now, 'paused' end

if wait > 0 then return {0, now, wait, reason} end

local idle_ms = math.floor(math.max(keep, pause - now) / 1000) + 60000
if keep > 0 then
  redis.call('ZADD', log, fmt(now), gid)
  redis.call('PEXPIRE', log, idle_ms)
  if #tws > 0 then
    redis.call('HSET', tok, gid, tokens)
    redis.call('PEXPIRE', tok, idle_ms)
    for _, w in ipairs(tws) do redis.call('HINCRBY', meta, 's:' .. w, tokens) end
  end
end
redis.call('PEXPIRE', meta, idle_ms)
if maxc > 0 then
  redis.call('ZADD', lease, fmt(now + ttl), gid)
  local ttl_ms = math.floor(ttl / 1000) + 1000
  if redis.call('PTTL', lease) < ttl_ms then redis.call('PEXPIRE', lease, ttl_ms) end
end
return {1, now, 0, false}
"""

_SETTLE = _COMMON + r"""
local log, tok, meta = KEYS[1], KEYS[2], KEYS[3]
local gid, actual = ARGV[1], tonumber(ARGV[2])
local t = redis.call('ZSCORE', log, gid)
if not t then return 0 end
t = tonumber(t)
local tws = token_windows(meta)
if #tws == 0 then return 0 end
local delta = actual - (tonumber(redis.call('HGET', tok, gid)) or 0)
if delta ~= 0 then
  redis.call('HSET', tok, gid, actual)
  for _, w in ipairs(tws) do
    if t > tonumber(redis.call('HGET', meta, 'c:' .. w)) then redis.call('HINCRBY', meta, 's:' .. w, delta) end
  end
end
return delta
"""

_PENALIZE = _COMMON + r"""
local meta = KEYS[1]
local now = now_us('')
local target
if ARGV[1] ~= '' then target = tonumber(ARGV[1]) else target = now + tonumber(ARGV[2]) end
local cur = tonumber(redis.call('HGET', meta, 'pause') or '0')
if target > cur then
  redis.call('HSET', meta, 'pause', fmt(target))
  local ms = math.floor((target - now) / 1000) + 60000
  if redis.call('PTTL', meta) < ms then redis.call('PEXPIRE', meta, ms) end
  cur = target
end
return cur
"""

_PAUSED = _COMMON + r"""
return {tonumber(redis.call('HGET', KEYS[1], 'pause') or '0'), now_us('')}
"""


def _us(seconds: float) -> int:
    return int(round(seconds * _US))


@lru_cache(maxsize=256)
def _tier_spec(tiers: tuple[Tier, ...]) -> str:
    """The tiers as one script argument; cached because a worker repeats the same policy."""
    for tier in tiers:
        if any(c in tier.name for c in "\t\n"):
            raise ValueError(f"tier name {tier.name!r} must not contain tabs or newlines")
    return "".join(
        f"{'r' if t.unit == 'requests' else 't'}\t{int(t.limit)}\t{_us(t.window_s)}\t{t.name}\n" for t in tiers
    )


class RedisLimitsMixin:
    """Sliding-window logs, leases and pauses on the shared Redis server."""

    def _rl_keys(self, key: str) -> list[str]:
        cache = self.__dict__.setdefault("_rl_key_cache", {})
        keys = cache.get(key)
        if keys is None:
            if len(cache) > 10_000:
                cache.clear()
            tag = "{" + key + "}"
            keys = cache[key] = [self._key("rl", tag, part) for part in ("log", "tok", "meta", "lease")]  # type: ignore[attr-defined]
        return keys

    def store_time(self) -> float:
        with self._guard():  # type: ignore[attr-defined]
            return self._server_time()  # type: ignore[attr-defined]

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
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        gid = uuid.uuid4().hex
        args: list[object] = [
            "" if now is None else _us(now),
            int(tokens),
            0 if max_concurrent is None else int(max_concurrent),
            _us(lease_ttl_s),
            gid,
            _tier_spec(tuple(tiers)),
        ]
        with self._guard():  # type: ignore[attr-defined]
            granted, at_us, wait_us, reason = self._script("rl_acquire", _ACQUIRE)(  # type: ignore[attr-defined]
                keys=self._rl_keys(key), args=args
            )
        at = at_us / _US
        if granted:
            return Grant(True, gid, 0.0, at, None)
        wait = math.inf if wait_us < 0 else wait_us / _US
        return Grant(False, None, wait, at, reason.decode() if isinstance(reason, bytes) else reason)

    def settle(self, key: str, grant_id: str, actual_tokens: int) -> int:
        keys = self._rl_keys(key)[:3]
        with self._guard():  # type: ignore[attr-defined]
            return int(self._script("rl_settle", _SETTLE)(keys=keys, args=[grant_id, int(actual_tokens)]))  # type: ignore[attr-defined]

    def release(self, key: str, grant_id: str) -> bool:
        # A single ZREM is atomic by itself; no script needed.
        with self._guard():  # type: ignore[attr-defined]
            return bool(self._redis.zrem(self._rl_keys(key)[3], grant_id))  # type: ignore[attr-defined]

    def penalize(self, key: str, until: float | None = None, *, delay_s: float | None = None) -> float:
        if (until is None) == (delay_s is None):
            raise ValueError("penalize needs exactly one of until or delay_s")
        args = [_us(until), ""] if until is not None else ["", _us(delay_s)]  # type: ignore[arg-type]
        meta = self._rl_keys(key)[2]
        with self._guard():  # type: ignore[attr-defined]
            return int(self._script("rl_penalize", _PENALIZE)(keys=[meta], args=args)) / _US  # type: ignore[attr-defined]

    def paused_until(self, key: str) -> float | None:
        with self._guard():  # type: ignore[attr-defined]
            pause, now = self._script("rl_paused", _PAUSED)(keys=[self._rl_keys(key)[2]])  # type: ignore[attr-defined]
        return pause / _US if pause > now else None
