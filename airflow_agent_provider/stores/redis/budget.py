"""
Budget operations of the Redis store (see stores/budget_api.py).

Each operation is one Lua script, so checking every scope and taking from all of them is atomic on
the server. Expiry is measured with the server's ``TIME`` inside the script, so workers whose clocks
disagree still agree on which reservations are live.

Keys (under the store prefix; scope keys never need escaping since they are only concatenated):

- ``bud:res:<id>``: hash ``state`` (reserved|settled|released), ``amount``, ``exp``, ``scopes`` (JSON);
  kept ``ttl + retention`` seconds so that a late retry stays idempotent.
- ``bud:live:<scope>``: sorted set of live reservation ids scored by expiry time;
  ``bud:ramt:<scope>``: hash id -> reserved nano-dollars. Live reserved = sum over unexpired members,
  so a dead worker's reservation simply stops counting; expired members are swept by later writes.
- ``bud:scope:<scope>``: hash ``spent`` (nano-dollars), ``calls``.
- ``bud:ledger:<dag_id>:<run_id>``: hash entry id -> JSON ledger entry (``HSETNX``: written once).

The scripts build keys from the prefix rather than receive them in ``KEYS``: the set of scopes of a
reservation is known only on the server at settle time. This store targets a single Redis (or a
primary with replicas), not Redis Cluster. The key names are listed in ``keys.py``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from airflow_agent_provider.stores.budget_api import (
    RESERVATION_RETENTION_S,
    BudgetBackend,
    LedgerEntry,
    ReserveResult,
    ScopeTotals,
    from_nano,
    limit_to_nano,
    to_nano,
    to_nano_up,
)
from airflow_agent_provider.stores.redis.connection import LuaScript, RedisConnection, ScriptArg

_COMMON = r"""
local P = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local NOW = string.format('%.6f', now)
local function fmt(n) return string.format('%d', n) end

-- Drop expired members of a scope; their reservations no longer count.
local function sweep(scope)
  local live = P .. 'bud:live:' .. scope
  local expired = redis.call('ZRANGEBYSCORE', live, '-inf', NOW)
  for _, id in ipairs(expired) do
    redis.call('ZREM', live, id)
    redis.call('HDEL', P .. 'bud:ramt:' .. scope, id)
  end
end

-- Settled and live-reserved nano-dollars and settled calls of a scope.
local function totals(scope)
  local ids = redis.call('ZRANGEBYSCORE', P .. 'bud:live:' .. scope, '(' .. NOW, '+inf')
  local reserved = 0
  if #ids > 0 then
    local amounts = redis.call('HMGET', P .. 'bud:ramt:' .. scope, unpack(ids))
    for _, a in ipairs(amounts) do reserved = reserved + (tonumber(a) or 0) end
  end
  local v = redis.call('HMGET', P .. 'bud:scope:' .. scope, 'spent', 'calls')
  return tonumber(v[1]) or 0, reserved, tonumber(v[2]) or 0
end

-- Remove one reservation from a scope's live set (settle/release).
local function unlive(scope, id)
  redis.call('ZREM', P .. 'bud:live:' .. scope, id)
  redis.call('HDEL', P .. 'bud:ramt:' .. scope, id)
end
"""

# ARGV: prefix, id, amount, ttl, retention, scopes_json, n, (scope, limit) * n
_RESERVE = LuaScript(
    "budget_reserve",
    _COMMON
    + r"""
local id = ARGV[2]
local amount = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local retention = tonumber(ARGV[5])
local scopes_json = ARGV[6]
local n = tonumber(ARGV[7])
local rkey = P .. 'bud:res:' .. id

local function tightest(dup)
  local best_room, bs, br, bl = nil, 0, 0, -1
  for i = 1, n do
    local scope, limit = ARGV[6 + 2 * i], tonumber(ARGV[7 + 2 * i])
    local s, r = totals(scope)
    local room = limit < 0 and math.huge or (limit - s - r)
    if best_room == nil or room < best_room then best_room, bs, br, bl = room, s, r, limit end
  end
  return {1, '', fmt(bs), fmt(br), fmt(bl), dup}
end

local old = redis.call('HMGET', rkey, 'state', 'exp', 'scopes')
if old[1] then
  if old[1] == 'settled' or (old[1] == 'reserved' and tonumber(old[2]) > now) then
    return tightest(1)
  end
  -- Expired or released: forget the old reservation, the id may reserve afresh.
  for _, scope in ipairs(cjson.decode(old[3])) do unlive(scope, id) end
end

for i = 1, n do
  local scope, limit = ARGV[6 + 2 * i], tonumber(ARGV[7 + 2 * i])
  sweep(scope)
  if limit >= 0 then
    local s, r = totals(scope)
    if s + r + amount > limit then
      return {0, scope, fmt(s), fmt(r), fmt(limit), 0}
    end
  end
end

local exp = string.format('%.6f', now + ttl)
for i = 1, n do
  local scope = ARGV[6 + 2 * i]
  redis.call('ZADD', P .. 'bud:live:' .. scope, exp, id)
  redis.call('HSET', P .. 'bud:ramt:' .. scope, id, fmt(amount))
end
redis.call('HSET', rkey, 'state', 'reserved', 'amount', fmt(amount), 'exp', exp, 'scopes', scopes_json)
redis.call('EXPIRE', rkey, math.ceil(ttl + retention))
return tightest(0)
""",
)

# ARGV: prefix, id, charge, retention, fallback_scopes_json, m, (ledger_key, entry_id, json) * m
_SETTLE = LuaScript(
    "budget_settle",
    _COMMON
    + r"""
local id = ARGV[2]
local charge = tonumber(ARGV[3])
local retention = tonumber(ARGV[4])
local m = tonumber(ARGV[6])
local rkey = P .. 'bud:res:' .. id
local old = redis.call('HMGET', rkey, 'state', 'scopes')
if old[1] == 'settled' then return 0 end
local scopes_json = old[1] and old[2] or ARGV[5]
local scopes = cjson.decode(scopes_json)
for _, scope in ipairs(scopes) do
  unlive(scope, id)
  local skey = P .. 'bud:scope:' .. scope
  redis.call('HINCRBY', skey, 'spent', fmt(charge))
  redis.call('HINCRBY', skey, 'calls', 1)
end
redis.call('HSET', rkey, 'state', 'settled', 'scopes', scopes_json)
redis.call('EXPIRE', rkey, math.ceil(retention))
for i = 0, m - 1 do
  redis.call('HSETNX', ARGV[7 + 3 * i], ARGV[8 + 3 * i], ARGV[9 + 3 * i])
end
return 1
""",
)

# ARGV: prefix, id, retention
_RELEASE = LuaScript(
    "budget_release",
    _COMMON
    + r"""
local id = ARGV[2]
local rkey = P .. 'bud:res:' .. id
local old = redis.call('HMGET', rkey, 'state', 'exp', 'scopes')
if old[1] ~= 'reserved' or tonumber(old[2]) <= now then return 0 end
for _, scope in ipairs(cjson.decode(old[3])) do unlive(scope, id) end
redis.call('HSET', rkey, 'state', 'released')
redis.call('EXPIRE', rkey, math.ceil(tonumber(ARGV[3])))
return 1
""",
)

# ARGV: prefix, scope
_TOTALS = LuaScript(
    "budget_totals",
    _COMMON
    + r"""
local s, r, c = totals(ARGV[2])
return {fmt(s), fmt(r), fmt(c)}
""",
)


def _limit_from_nano(nano: int) -> float:
    return math.inf if nano < 0 else from_nano(nano)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _reserve_answer(res: list[Any]) -> ReserveResult:
    granted, scope, spent, reserved, limit, dup = res
    return ReserveResult(
        granted=bool(int(granted)),
        refused_scope=_text(scope) or None,
        spent=from_nano(int(spent)),
        reserved=from_nano(int(reserved)),
        limit=_limit_from_nano(int(limit)),
        duplicate=bool(int(dup)),
    )


def _totals_answer(res: list[Any]) -> ScopeTotals:
    spent, reserved, calls = res
    return ScopeTotals(from_nano(int(spent)), from_nano(int(reserved)), int(calls))


def _ledger_answer(raw: list[Any], dag_id: str, run_id: str) -> list[LedgerEntry]:
    entries = [LedgerEntry(**json.loads(value)) for value in raw]
    entries = [e for e in entries if e.dag_id == dag_id and e.run_id == run_id]
    return sorted(entries, key=lambda e: (e.ts or 0.0, e.entry_id))


class RedisBudget(BudgetBackend):
    """
    Reservations, spend and ledger in Redis hashes and sorted sets (see the module docstring).

    The sync operations and their async twins build the same script arguments and read the same
    answers; only the client differs.
    """

    def __init__(self, conn: RedisConnection) -> None:
        self._conn = conn

    def _reserve_args(
        self, reservation_id: str, scopes: tuple[tuple[str, float], ...], amount: float, ttl_s: float
    ) -> list[ScriptArg]:
        args: list[ScriptArg] = [
            self._conn.prefix,
            reservation_id,
            to_nano_up(amount),
            repr(float(ttl_s)),
            int(RESERVATION_RETENTION_S),
            json.dumps([scope for scope, _ in scopes]),
            len(scopes),
        ]
        for scope, limit in scopes:
            args += [scope, limit_to_nano(limit)]
        return args

    def reserve(
        self, reservation_id: str, scopes: tuple[tuple[str, float], ...], amount: float, ttl_s: float
    ) -> ReserveResult:
        args = self._reserve_args(reservation_id, scopes, amount, ttl_s)
        return _reserve_answer(self._conn.run(_RESERVE, args=args))

    async def areserve(
        self, reservation_id: str, scopes: tuple[tuple[str, float], ...], amount: float, ttl_s: float
    ) -> ReserveResult:
        args = self._reserve_args(reservation_id, scopes, amount, ttl_s)
        return _reserve_answer(await self._conn.arun(_RESERVE, args=args))

    def _settle_args(
        self,
        reservation_id: str,
        actual: float | None,
        ledger_entries: tuple[LedgerEntry, ...],
        scopes: tuple[str, ...],
        now: float | None,
    ) -> list[ScriptArg]:
        args: list[ScriptArg] = [
            self._conn.prefix,
            reservation_id,
            0 if actual is None else to_nano(actual),
            int(RESERVATION_RETENTION_S),
            json.dumps(list(scopes)),
            len(ledger_entries),
        ]
        for entry in ledger_entries:
            row = asdict(entry)
            row["ts"] = now if entry.ts is None else entry.ts
            row["reservation_id"] = entry.reservation_id or reservation_id
            args += [self._conn.keys.ledger(entry.dag_id, entry.run_id), entry.entry_id, json.dumps(row)]
        return args

    def settle(
        self,
        reservation_id: str,
        actual: float | None,
        ledger_entries: tuple[LedgerEntry, ...],
        scopes: tuple[str, ...],
    ) -> bool:
        now = self._conn.server_time() if any(e.ts is None for e in ledger_entries) else None
        args = self._settle_args(reservation_id, actual, ledger_entries, scopes, now)
        return bool(self._conn.run(_SETTLE, args=args))

    async def asettle(
        self,
        reservation_id: str,
        actual: float | None,
        ledger_entries: tuple[LedgerEntry, ...],
        scopes: tuple[str, ...],
    ) -> bool:
        now = await self._conn.aserver_time() if any(e.ts is None for e in ledger_entries) else None
        args = self._settle_args(reservation_id, actual, ledger_entries, scopes, now)
        return bool(await self._conn.arun(_SETTLE, args=args))

    def release(self, reservation_id: str) -> bool:
        args: list[ScriptArg] = [self._conn.prefix, reservation_id, int(RESERVATION_RETENTION_S)]
        return bool(self._conn.run(_RELEASE, args=args))

    async def arelease(self, reservation_id: str) -> bool:
        args: list[ScriptArg] = [self._conn.prefix, reservation_id, int(RESERVATION_RETENTION_S)]
        return bool(await self._conn.arun(_RELEASE, args=args))

    def totals(self, scope: str) -> ScopeTotals:
        return _totals_answer(self._conn.run(_TOTALS, args=[self._conn.prefix, scope]))

    async def atotals(self, scope: str) -> ScopeTotals:
        return _totals_answer(await self._conn.arun(_TOTALS, args=[self._conn.prefix, scope]))

    def ledger_entries(self, dag_id: str, run_id: str) -> list[LedgerEntry]:
        ledger = self._conn.keys.ledger(dag_id, run_id)
        return _ledger_answer(self._conn.call(lambda c: c.hvals(ledger)), dag_id, run_id)

    async def aledger_entries(self, dag_id: str, run_id: str) -> list[LedgerEntry]:
        ledger = self._conn.keys.ledger(dag_id, run_id)
        return _ledger_answer(await self._conn.acall(lambda c: c.hvals(ledger)), dag_id, run_id)
