"""
Run index and usage reads of the Redis store (see stores/runs_api.py).

Keys (under the store prefix):

- ``runs:rec:<dag_id>:<run_id>``: the run record (JSON), kept ``RECORD_TTL_S``;
- ``runs:recent``: sorted set of ``<dag_id>\\n<run_id>`` scored by the time it was recorded, and
  ``runs:dag:<dag_id>`` the same per DAG; both trimmed to the newest ``INDEX_KEEP`` members
  (a DAG id never holds a newline, so the member splits back unambiguously).

``ledger_runs`` scans the ledger hashes (``bud:ledger:<dag_id>:<run_id>``, written by the budget
mixin) with ``SCAN`` (never ``KEYS``), at most ``LEDGER_SCAN_MAX`` of them. ``limit_usage`` is one
read-only Lua script over the limits mixin's keys (``rl:{key}:log|meta|lease``): it counts the
log in each window on the server's clock, sums the grants' tokens, counts unexpired leases, and
writes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from airflow_agent_provider.stores.limits_api import Tier
from airflow_agent_provider.stores.runs_api import LedgerRun, LimitUsage, RunRecord, TierUsage, clamp_limit

RECORD_TTL_S = 400 * 86400
INDEX_KEEP = 10_000
LEDGER_SCAN_MAX = 2_000

_US = 1_000_000

_USAGE = r"""
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
"""

_GLOB = re.compile(r"([*?\[\]\\])")


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a ``SCAN MATCH`` pattern."""
    return _GLOB.sub(r"\\\1", text)


class RedisRunsMixin:
    """The run index in Redis, and read-only queries over the ledger and limit keys."""

    def _run_member(self, dag_id: str, run_id: str) -> str:
        return f"{dag_id}\n{run_id}"

    def run_record(self, record: RunRecord) -> None:
        text = record.to_json()
        member = self._run_member(record.dag_id, record.run_id)
        recent, per_dag = self._key("runs", "recent"), self._key("runs", "dag", record.dag_id)  # type: ignore[attr-defined]
        with self._guard():  # type: ignore[attr-defined]
            now = self._server_time()  # type: ignore[attr-defined]
            pipe = self._redis.pipeline(transaction=True)  # type: ignore[attr-defined]
            pipe.set(self._key("runs", "rec", record.dag_id, record.run_id), text, ex=RECORD_TTL_S)  # type: ignore[attr-defined]
            for index in (recent, per_dag):
                pipe.zadd(index, {member: now})
                pipe.zremrangebyrank(index, 0, -INDEX_KEEP - 1)
                pipe.expire(index, RECORD_TTL_S)
            pipe.execute()

    def run_get(self, dag_id: str, run_id: str) -> RunRecord | None:
        with self._guard():  # type: ignore[attr-defined]
            text = self._redis.get(self._key("runs", "rec", dag_id, run_id))  # type: ignore[attr-defined]
        return None if text is None else RunRecord.from_json(text)

    def runs_list(self, dag_id: str | None = None, limit: int = 50) -> list[RunRecord]:
        limit = clamp_limit(limit)
        index = self._key("runs", "recent") if dag_id is None else self._key("runs", "dag", dag_id)  # type: ignore[attr-defined]
        with self._guard():  # type: ignore[attr-defined]
            members = self._redis.zrevrange(index, 0, limit - 1)  # type: ignore[attr-defined]
            keys = []
            for member in members:
                d, _, r = (member.decode() if isinstance(member, bytes) else member).partition("\n")
                keys.append(self._key("runs", "rec", d, r))  # type: ignore[attr-defined]
            texts = self._redis.mget(keys) if keys else []  # type: ignore[attr-defined]
        return [RunRecord.from_json(t) for t in texts if t is not None]

    def ledger_runs(self, dag_id: str | None = None, limit: int = 50) -> list[LedgerRun]:
        limit = clamp_limit(limit)
        base = self._key("bud", "ledger", "")  # type: ignore[attr-defined]
        pattern = _glob_escape(base) + (_glob_escape(dag_id) + ":*" if dag_id is not None else "*")
        runs: list[LedgerRun] = []
        with self._guard():  # type: ignore[attr-defined]
            keys = []
            for key in self._redis.scan_iter(match=pattern, count=500):  # type: ignore[attr-defined]
                keys.append(key.decode() if isinstance(key, bytes) else key)
                if len(keys) >= LEDGER_SCAN_MAX:
                    break
            pipe = self._redis.pipeline(transaction=False)  # type: ignore[attr-defined]
            for key in keys:
                pipe.hvals(key)
            answers = pipe.execute() if keys else []
        for key, values in zip(keys, answers):
            d, _, r = key[len(base) :].partition(":")
            stamps = [float(json.loads(v).get("ts") or 0.0) for v in values]
            if stamps:
                runs.append(LedgerRun(d, r, min(stamps), max(stamps), len(stamps)))
        runs.sort(key=lambda run: run.last_ts, reverse=True)
        return runs[:limit]

    def limit_usage(self, key: str, tiers: Sequence[Tier]) -> LimitUsage:
        args: list[object] = []
        for tier in tiers:
            args += [int(round(tier.window_s * _US)), tier.unit]
        answer = self._script("runs_limit_usage", _USAGE)(keys=self._rl_keys(key), args=args)  # type: ignore[attr-defined]
        values = [int(v) for v in answer]
        used = [TierUsage(t.name, t.unit, t.limit, t.window_s, values[i]) for i, t in enumerate(tiers)]
        leases, seen, now_us = values[len(tiers) :]
        return LimitUsage(key, used, leases, now_us / _US, bool(seen))


__all__ = ["RedisRunsMixin"]
