"""
Run index and usage reads of the Redis store (see stores/runs_api.py).

Keys (under the store prefix):

- ``runs:rec:<dag_id>:<run_id>``: the run record (JSON), kept ``RECORD_TTL_S``;
- ``runs:recent``: sorted set of ``<dag_id>``, a newline, ``<run_id>``, scored by the time it was recorded;
  ``runs:dag:<dag_id>`` the same per DAG; both trimmed to the newest ``INDEX_KEEP`` members
  (a DAG id never holds a newline, so the member splits back unambiguously).

``ledger_runs`` scans the ledger hashes (``bud:ledger:<dag_id>:<run_id>``, written by the budget
concern) with ``SCAN`` (never ``KEYS``), at most ``LEDGER_SCAN_MAX`` of them. ``limit_usage`` is one
read-only Lua script over the limits concern's keys (``rl:{key}:log|meta|lease``): it counts the
log in each window on the server's clock, sums the grants' tokens, counts unexpired leases, and
writes nothing.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, cast

from airflow_agent_provider.stores.redis.connection import LuaScript, RedisConnection, ScriptArg
from airflow_agent_provider.stores.runs_api import LedgerRun, LimitUsage, RunRecord, RunsBackend, TierUsage

if TYPE_CHECKING:
    import redis

    from airflow_agent_provider.stores.limits_api import Tier

RECORD_TTL_S = 400 * 86400
INDEX_KEEP = 10_000
LEDGER_SCAN_MAX = 2_000

_US = 1_000_000

_USAGE = LuaScript(
    "runs_limit_usage",
    r"""
local log, meta, lease = KEYS[1], KEYS[2], KEYS[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function fmt(x) return string.format('%d', x) end
local out = {}
for i = 1, #ARGV, 2 do
  local from = '(' .. fmt(now - tonumber(ARGV[i]))
  if ARGV[i + 1] == 'requests' then
    out[#out + 1] = redis.call('ZCOUNT', log, from, '+inf')
  else
    local ids = redis.call('ZRANGEBYSCORE', log, from, '+inf')
    local sum = 0
    for j = 1, #ids, 1000 do
      local vals = redis.call('HMGET', meta, unpack(ids, j, math.min(j + 999, #ids)))
      for k = 1, #vals do sum = sum + (tonumber(vals[k]) or 0) end
    end
    out[#out + 1] = fmt(sum)
  end
end
out[#out + 1] = redis.call('ZCOUNT', lease, '(' .. fmt(now), '+inf')
out[#out + 1] = redis.call('EXISTS', log) + redis.call('EXISTS', lease)
out[#out + 1] = fmt(now)
return out
""",
)

_GLOB = re.compile(r"([*?\[\]\\])")


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a ``SCAN MATCH`` pattern."""
    return _GLOB.sub(r"\\\1", text)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisRuns(RunsBackend):
    """The run index in Redis, and read-only queries over the ledger and limit keys."""

    def __init__(self, conn: RedisConnection) -> None:
        self._conn = conn

    def record(self, record: RunRecord, text: str) -> None:
        keys = self._conn.keys
        member = f"{record.dag_id}\n{record.run_id}"
        now = self._conn.server_time()

        def write(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=True)
            pipe.set(keys.run_record(record.dag_id, record.run_id), text, ex=RECORD_TTL_S)
            for index in (keys.runs_recent, keys.runs_of_dag(record.dag_id)):
                pipe.zadd(index, {member: now})
                pipe.zremrangebyrank(index, 0, -INDEX_KEEP - 1)
                pipe.expire(index, RECORD_TTL_S)
            pipe.execute()

        self._conn.call(write)

    def get(self, dag_id: str, run_id: str) -> RunRecord | None:
        key = self._conn.keys.run_record(dag_id, run_id)
        text = self._conn.call(lambda c: c.get(key))
        return None if text is None else RunRecord.from_json(text)

    def recent(self, dag_id: str | None, limit: int) -> list[RunRecord]:
        keys = self._conn.keys
        index = keys.runs_recent if dag_id is None else keys.runs_of_dag(dag_id)

        def read(client: redis.Redis) -> list[Any]:
            # The sync client returns replies, not awaitables (redis-py types both with one union).
            members = cast("list[bytes]", client.zrevrange(index, 0, limit - 1))
            records = []
            for member in members:
                d, _, r = _text(member).partition("\n")
                records.append(keys.run_record(d, r))
            return cast("list[Any]", client.mget(records)) if records else []

        return [RunRecord.from_json(t) for t in self._conn.call(read) if t is not None]

    def ledger_runs(self, dag_id: str | None, limit: int) -> list[LedgerRun]:
        base = self._conn.keys.ledger_base
        pattern = _glob_escape(base) + (_glob_escape(dag_id) + ":*" if dag_id is not None else "*")

        def scan(client: redis.Redis) -> tuple[list[str], list[Any]]:
            keys: list[str] = []
            for key in client.scan_iter(match=pattern, count=500):
                keys.append(_text(key))
                if len(keys) >= LEDGER_SCAN_MAX:
                    break
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.hvals(key)
            return keys, pipe.execute() if keys else []

        keys, answers = self._conn.call(scan)
        runs: list[LedgerRun] = []
        for key, values in zip(keys, answers):
            d, _, r = key[len(base) :].partition(":")
            stamps = [float(json.loads(v).get("ts") or 0.0) for v in values]
            if stamps:
                runs.append(LedgerRun(d, r, min(stamps), max(stamps), len(stamps)))
        runs.sort(key=lambda run: run.last_ts, reverse=True)
        return runs[:limit]

    def limit_usage(self, key: str, tiers: tuple[Tier, ...]) -> LimitUsage:
        args: list[ScriptArg] = []
        for tier in tiers:
            args += [round(tier.window_s * _US), tier.unit]
        values = [int(v) for v in self._conn.run(_USAGE, self._conn.keys.rate_limit(key), args)]
        used = [TierUsage(t.name, t.unit, t.limit, t.window_s, values[i]) for i, t in enumerate(tiers)]
        leases, seen, now_us = values[len(tiers) :]
        return LimitUsage(key, used, leases, now_us / _US, bool(seen))


__all__ = ["RedisRuns"]
