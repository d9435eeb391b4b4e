"""
Run index and usage reads of the SQLite store (see stores/runs_api.py; tables in ``schema.py``).

``run_index`` holds one row per recorded run: the columns the overview sorts and filters by, and
the record as JSON. ``ledger_runs`` groups the ledger table (``budget_ledger``, indexed by
``dag_id, run_id, ts``); ``limit_usage`` counts the grant log (``rl_log``, indexed by ``key, t``)
and the live leases (``rl_lease``) of the limits concern. Reads run outside any write transaction
(WAL readers do not block writers and take no lock), so the Operations page never slows a call.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from airflow_agent_provider.stores.runs_api import LedgerRun, LimitUsage, RunRecord, RunsBackend, TierUsage

if TYPE_CHECKING:
    from airflow_agent_provider.stores.limits_api import Tier
    from airflow_agent_provider.stores.sqlite.connection import SQLiteConnection


class SQLiteRuns(RunsBackend):
    """The run index table and read-only queries over the ledger and limit tables."""

    def __init__(self, db: SQLiteConnection) -> None:
        self._db = db

    def record(self, record: RunRecord, text: str) -> None:
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO run_index (dag_id, run_id, ended_at, recorded_at, record) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (dag_id, run_id) DO UPDATE SET ended_at = excluded.ended_at, "
                "recorded_at = excluded.recorded_at, record = excluded.record",
                (record.dag_id, record.run_id, record.ended_at, time.time(), text),
            )

    def get(self, dag_id: str, run_id: str) -> RunRecord | None:
        row = (
            self._db.conn()
            .execute("SELECT record FROM run_index WHERE dag_id = ? AND run_id = ?", (dag_id, run_id))
            .fetchone()
        )
        return None if row is None else RunRecord.from_json(row[0])

    def recent(self, dag_id: str | None, limit: int) -> list[RunRecord]:
        if dag_id is None:
            rows = self._db.conn().execute(
                "SELECT record FROM run_index ORDER BY recorded_at DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._db.conn().execute(
                "SELECT record FROM run_index WHERE dag_id = ? ORDER BY recorded_at DESC LIMIT ?",
                (dag_id, limit),
            )
        return [RunRecord.from_json(r[0]) for r in rows.fetchall()]

    def ledger_runs(self, dag_id: str | None, limit: int) -> list[LedgerRun]:
        where, args = ("WHERE dag_id = ?", (dag_id,)) if dag_id is not None else ("", ())
        rows = (
            self._db.conn()
            .execute(
                f"SELECT dag_id, run_id, MIN(ts), MAX(ts), COUNT(*) FROM budget_ledger {where} "
                "GROUP BY dag_id, run_id ORDER BY MAX(ts) DESC LIMIT ?",
                (*args, limit),
            )
            .fetchall()
        )
        return [LedgerRun(d, r, float(a), float(b), int(n)) for d, r, a, b, n in rows]

    def limit_usage(self, key: str, tiers: tuple[Tier, ...]) -> LimitUsage:
        now = time.time()
        with self._db.read() as conn:  # one consistent snapshot for every count (no lock taken)
            used = []
            for tier in tiers:
                sql = "COUNT(*)" if tier.unit == "requests" else "COALESCE(SUM(tokens), 0)"
                (value,) = conn.execute(
                    f"SELECT {sql} FROM rl_log WHERE key = ? AND t > ?",
                    (key, now - tier.window_s),
                ).fetchone()
                used.append(TierUsage(tier.name, tier.unit, tier.limit, tier.window_s, int(value)))
            (leases,) = conn.execute(
                "SELECT COUNT(*) FROM rl_lease WHERE key = ? AND expires > ?", (key, now)
            ).fetchone()
            (seen,) = conn.execute("SELECT EXISTS (SELECT 1 FROM rl_log WHERE key = ?)", (key,)).fetchone()
        return LimitUsage(key, used, int(leases), now, bool(seen or leases))


__all__ = ["SQLiteRuns"]
