"""
Rate-limit operations of the SQLite store (see stores/limits_api.py; tables in ``schema.py``).

Layout: ``rl_log`` holds one row per grant (time, tokens); ``rl_window`` keeps, per key and per
window length, a running total of the log entries still inside the window and the cursor up to
which entries have already left it. Each operation advances the cursors over the entries that left
since the last call, so its cost does not grow with the traffic of a day-long window (counting a
day's log on every call would). ``rl_lease`` holds concurrency leases with their expiry,
``rl_pause`` the provider-feedback pauses. Every operation is one ``BEGIN IMMEDIATE`` transaction
and reads ``time.time()`` after taking the write lock, so grant times are ordered like the grants.
"""

from __future__ import annotations

import math
import sqlite3
import time
import uuid
from typing import TYPE_CHECKING

from airflow_agent_provider.stores.limits_api import (
    REASON_CONCURRENCY,
    REASON_PAUSED,
    Grant,
    LimitsBackend,
    Tier,
)

if TYPE_CHECKING:
    from airflow_agent_provider.stores.sqlite.connection import SQLiteConnection

#: Per ``(unit, window_s)``: ``[cursor, total]`` of that window.
_Windows = dict[tuple[str, float], list[float]]


def _weight_sql(unit: str) -> str:
    return "COUNT(*)" if unit == "requests" else "COALESCE(SUM(tokens), 0)"


class SQLiteLimits(LimitsBackend):
    """Sliding-window logs, leases and pauses in the shared SQLite file."""

    def __init__(self, db: SQLiteConnection) -> None:
        self._db = db

    def store_time(self) -> float:
        return time.time()

    # -- windows -----------------------------------------------------------------------------

    @staticmethod
    def _windows(conn: sqlite3.Connection, key: str, tiers: tuple[Tier, ...], now: float) -> _Windows:
        """Register the call's windows, move every window of the key to ``now``, prune the log."""
        rows = conn.execute(
            "SELECT unit, window_s, cursor, total FROM rl_window WHERE key = ?", (key,)
        ).fetchall()
        windows: _Windows = {(unit, w): [cursor, total] for unit, w, cursor, total in rows}
        for tier in tiers:
            ident = (tier.unit, float(tier.window_s))
            if ident in windows:
                continue
            cutoff = now - tier.window_s
            (total,) = conn.execute(
                f"SELECT {_weight_sql(tier.unit)} FROM rl_log WHERE key = ? AND t > ?", (key, cutoff)
            ).fetchone()
            conn.execute(
                "INSERT INTO rl_window (key, unit, window_s, cursor, total) VALUES (?, ?, ?, ?, ?)",
                (key, tier.unit, float(tier.window_s), cutoff, total),
            )
            windows[ident] = [cutoff, total]
        for (unit, w), state in windows.items():
            cutoff = now - w
            if cutoff <= state[0]:
                continue
            (left,) = conn.execute(
                f"SELECT {_weight_sql(unit)} FROM rl_log WHERE key = ? AND t > ? AND t <= ?",
                (key, state[0], cutoff),
            ).fetchone()
            state[0], state[1] = cutoff, state[1] - left
            conn.execute(
                "UPDATE rl_window SET cursor = ?, total = ? WHERE key = ? AND unit = ? AND window_s = ?",
                (cutoff, state[1], key, unit, w),
            )
        if windows:
            oldest = min(state[0] for state in windows.values())
            conn.execute("DELETE FROM rl_log WHERE key = ? AND t <= ?", (key, oldest))
        return windows

    @staticmethod
    def _tier_wait(
        conn: sqlite3.Connection, key: str, tier: Tier, total: float, tokens: int, now: float
    ) -> float:
        """Seconds until ``tier`` could grant, given only that entries leave its window."""
        need = 1 if tier.unit == "requests" else tokens
        if need > tier.limit:
            return math.inf
        excess = total + need - tier.limit
        if excess <= 0:
            return 0.0
        cursor = conn.execute(
            "SELECT t, tokens FROM rl_log WHERE key = ? AND t > ? ORDER BY t", (key, now - tier.window_s)
        )
        freed = 0
        for t, entry_tokens in cursor:
            freed += 1 if tier.unit == "requests" else entry_tokens
            if freed >= excess:
                return max(float(t) + tier.window_s - now, 0.0)
        return tier.window_s

    # -- operations --------------------------------------------------------------------------

    def acquire(
        self,
        key: str,
        tiers: tuple[Tier, ...],
        tokens: int,
        max_concurrent: int | None,
        lease_ttl_s: float,
        now: float | None,
    ) -> Grant:
        with self._db.write() as conn:
            at = time.time() if now is None else now
            windows = self._windows(conn, key, tiers, at)
            wait, reason = 0.0, None
            for tier in tiers:
                total = windows[(tier.unit, float(tier.window_s))][1]
                w = self._tier_wait(conn, key, tier, total, tokens, at)
                if w > wait:
                    wait, reason = w, tier.name
            conn.execute("DELETE FROM rl_lease WHERE key = ? AND expires <= ?", (key, at))
            if max_concurrent is not None:
                held, first = conn.execute(
                    "SELECT COUNT(*), MIN(expires) FROM rl_lease WHERE key = ?", (key,)
                ).fetchone()
                if held >= max_concurrent:
                    w = max(float(first) - at, 0.0) if held else math.inf
                    if w > wait:
                        wait, reason = w, REASON_CONCURRENCY
            row = conn.execute("SELECT until FROM rl_pause WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] > at and row[0] - at > wait:
                wait, reason = float(row[0]) - at, REASON_PAUSED
            if wait > 0:
                return Grant(False, None, wait, at, reason)
            gid = uuid.uuid4().hex
            if windows:
                conn.execute(
                    "INSERT INTO rl_log (key, gid, t, tokens) VALUES (?, ?, ?, ?)", (key, gid, at, tokens)
                )
                conn.execute(
                    "UPDATE rl_window SET total = total + CASE unit WHEN 'requests' THEN 1 ELSE ? END "
                    "WHERE key = ?",
                    (tokens, key),
                )
            if max_concurrent is not None:
                conn.execute(
                    "INSERT INTO rl_lease (key, gid, expires) VALUES (?, ?, ?)", (key, gid, at + lease_ttl_s)
                )
            return Grant(True, gid, 0.0, at, None)

    def settle(self, key: str, grant_id: str, actual_tokens: int) -> int:
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT t, tokens FROM rl_log WHERE key = ? AND gid = ?", (key, grant_id)
            ).fetchone()
            if row is None:
                return 0
            t, reserved = row
            delta = actual_tokens - int(reserved)
            if delta:
                conn.execute(
                    "UPDATE rl_log SET tokens = ? WHERE key = ? AND gid = ?",
                    (actual_tokens, key, grant_id),
                )
                conn.execute(
                    "UPDATE rl_window SET total = total + ? WHERE key = ? AND unit = 'tokens' AND cursor < ?",
                    (delta, key, t),
                )
            return delta

    def release(self, key: str, grant_id: str) -> bool:
        with self._db.write() as conn:
            cur = conn.execute("DELETE FROM rl_lease WHERE key = ? AND gid = ?", (key, grant_id))
            return bool(cur.rowcount > 0)

    def penalize(self, key: str, until: float | None, delay_s: float | None) -> float:
        with self._db.write() as conn:
            target = until if until is not None else time.time() + (delay_s or 0.0)
            conn.execute(
                "INSERT INTO rl_pause (key, until) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET until = MAX(until, excluded.until)",
                (key, target),
            )
            (effective,) = conn.execute("SELECT until FROM rl_pause WHERE key = ?", (key,)).fetchone()
            return float(effective)

    def paused_until(self, key: str) -> float | None:
        row = self._db.conn().execute("SELECT until FROM rl_pause WHERE key = ?", (key,)).fetchone()
        if row is None or row[0] <= time.time():
            return None
        return float(row[0])
