"""
Circuit-breaker operations of the SQLite store (see stores/breaker_api.py).

Each operation is one ``BEGIN IMMEDIATE`` transaction, so two processes can never both take the
last half-open trial slot or both miss the failure that reaches the threshold. Time is the machine's
clock: every user of one SQLite file runs on the same machine.
"""

from __future__ import annotations

import sqlite3
import time

from airflow_agent_provider.stores.breaker_api import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerConfig,
    BreakerDecision,
    BreakerStateName,
)


class SQLiteBreakerMixin:
    """Tables: one state row per key, failure timestamps (sliding window), half-open trial leases."""

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        super()._create_schema(conn)  # type: ignore[misc]
        conn.execute(
            """CREATE TABLE IF NOT EXISTS breaker_state (
                   key TEXT PRIMARY KEY,
                   state TEXT NOT NULL,
                   open_until REAL NOT NULL DEFAULT 0,
                   seq INTEGER NOT NULL DEFAULT 0)"""
        )
        conn.execute("CREATE TABLE IF NOT EXISTS breaker_failures (key TEXT NOT NULL, ts REAL NOT NULL)")
        conn.execute("CREATE INDEX IF NOT EXISTS breaker_failures_key ON breaker_failures (key, ts)")
        conn.execute(
            """CREATE TABLE IF NOT EXISTS breaker_trials (
                   key TEXT NOT NULL, trial_id TEXT NOT NULL, expires_at REAL NOT NULL,
                   PRIMARY KEY (key, trial_id))"""
        )

    # -- helpers (run inside a transaction) ------------------------------------------------------

    @staticmethod
    def _breaker_row(conn: sqlite3.Connection, key: str) -> tuple[str, float, int]:
        row = conn.execute(
            "SELECT state, open_until, seq FROM breaker_state WHERE key = ?", (key,)
        ).fetchone()
        return (row[0], row[1], row[2]) if row else (CLOSED, 0.0, 0)

    @staticmethod
    def _breaker_put(conn: sqlite3.Connection, key: str, state: str, open_until: float, seq: int) -> None:
        conn.execute(
            "INSERT INTO breaker_state (key, state, open_until, seq) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET state = excluded.state, open_until = excluded.open_until, "
            "seq = excluded.seq",
            (key, state, open_until, seq),
        )

    @staticmethod
    def _breaker_clear(conn: sqlite3.Connection, key: str) -> None:
        conn.execute("DELETE FROM breaker_failures WHERE key = ?", (key,))
        conn.execute("DELETE FROM breaker_trials WHERE key = ?", (key,))

    def _breaker_current(
        self, conn: sqlite3.Connection, key: str, now: float, *, persist: bool = False
    ) -> tuple[str, float, int]:
        """
        The row with the open -> half-open transition applied once the timeout has passed.

        Only ``breaker_allow`` persists that transition (``persist=True``, inside its write
        transaction): reads report it without writing, and ``breaker_record`` writes its own outcome.
        """
        state, open_until, seq = self._breaker_row(conn, key)
        if state == OPEN and now >= open_until:
            state = HALF_OPEN
            if persist:
                self._breaker_put(conn, key, state, open_until, seq)
                conn.execute("DELETE FROM breaker_trials WHERE key = ?", (key,))
        return state, open_until, seq

    # -- BreakerStore ------------------------------------------------------------------------------

    def breaker_allow(self, key: str, cfg: BreakerConfig) -> BreakerDecision:
        with self._tx() as conn:  # type: ignore[attr-defined]
            now = time.time()
            state, open_until, seq = self._breaker_current(conn, key, now, persist=True)
            if state == CLOSED:
                return BreakerDecision(True, CLOSED)
            if state == OPEN:
                return BreakerDecision(False, OPEN, open_until - now)
            conn.execute("DELETE FROM breaker_trials WHERE key = ? AND expires_at <= ?", (key, now))
            running, first_expiry = conn.execute(
                "SELECT COUNT(*), MIN(expires_at) FROM breaker_trials WHERE key = ?", (key,)
            ).fetchone()
            if running < cfg.half_open_max_calls:
                seq += 1
                trial_id = str(seq)
                self._breaker_put(conn, key, HALF_OPEN, open_until, seq)
                conn.execute(
                    "INSERT INTO breaker_trials (key, trial_id, expires_at) VALUES (?, ?, ?)",
                    (key, trial_id, now + cfg.trial_timeout_s),
                )
                return BreakerDecision(True, HALF_OPEN, 0.0, trial_id)
            return BreakerDecision(False, HALF_OPEN, min(cfg.reset_timeout_s, first_expiry - now))

    def breaker_record(
        self, key: str, success: bool, cfg: BreakerConfig, *, trial_id: str | None = None
    ) -> BreakerStateName:
        with self._tx() as conn:  # type: ignore[attr-defined]
            now = time.time()
            state, _, seq = self._breaker_current(conn, key, now)
            if state == OPEN:
                return OPEN
            if state == HALF_OPEN:
                self._breaker_clear(conn, key)
                if success:
                    self._breaker_put(conn, key, CLOSED, 0.0, seq)
                    return CLOSED
                self._breaker_put(conn, key, OPEN, now + cfg.reset_timeout_s, seq)
                return OPEN
            if success:
                return CLOSED
            conn.execute("DELETE FROM breaker_failures WHERE key = ? AND ts <= ?", (key, now - cfg.window_s))
            conn.execute("INSERT INTO breaker_failures (key, ts) VALUES (?, ?)", (key, now))
            (failures,) = conn.execute(
                "SELECT COUNT(*) FROM breaker_failures WHERE key = ?", (key,)
            ).fetchone()
            if failures >= cfg.failure_threshold:
                self._breaker_clear(conn, key)
                self._breaker_put(conn, key, OPEN, now + cfg.reset_timeout_s, seq)
                return OPEN
            self._breaker_put(conn, key, CLOSED, 0.0, seq)
            return CLOSED

    def breaker_release(self, key: str, trial_id: str) -> None:
        with self._tx() as conn:  # type: ignore[attr-defined]
            conn.execute("DELETE FROM breaker_trials WHERE key = ? AND trial_id = ?", (key, trial_id))

    def breaker_state(self, key: str) -> BreakerStateName:
        # A plain read in autocommit mode: no write lock, nothing persisted (reads never write).
        conn = self._conn()  # type: ignore[attr-defined]
        state, _, _ = self._breaker_current(conn, key, time.time())
        return state  # type: ignore[return-value]

    def breaker_reset(self, key: str) -> None:
        with self._tx() as conn:  # type: ignore[attr-defined]
            self._breaker_clear(conn, key)
            conn.execute("DELETE FROM breaker_state WHERE key = ?", (key,))
