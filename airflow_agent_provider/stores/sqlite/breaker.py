"""
Circuit-breaker operations of the SQLite store (see stores/breaker_api.py).

Each operation is one ``BEGIN IMMEDIATE`` transaction, so two processes can never both take the
last half-open trial slot or both miss the failure that reaches the threshold. Time is the machine's
clock: every user of one SQLite file runs on the same machine.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

from airflow_agent_provider.stores.breaker_api import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerBackend,
    BreakerConfig,
    BreakerDecision,
    BreakerStateName,
)

if TYPE_CHECKING:
    from airflow_agent_provider.stores.sqlite.connection import SQLiteConnection


class SQLiteBreaker(BreakerBackend):
    """Tables: one state row per key, failure timestamps (sliding window), half-open trial leases."""

    def __init__(self, db: SQLiteConnection) -> None:
        self._db = db

    # -- helpers (run inside a transaction) ------------------------------------------------------

    @staticmethod
    def _row(conn: sqlite3.Connection, key: str) -> tuple[BreakerStateName, float, int]:
        row = conn.execute(
            "SELECT state, open_until, seq FROM breaker_state WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return CLOSED, 0.0, 0
        state: BreakerStateName = row[0]  # only the three names are ever written
        return state, float(row[1]), int(row[2])

    @staticmethod
    def _put(conn: sqlite3.Connection, key: str, state: str, open_until: float, seq: int) -> None:
        conn.execute(
            "INSERT INTO breaker_state (key, state, open_until, seq) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET state = excluded.state, open_until = excluded.open_until, "
            "seq = excluded.seq",
            (key, state, open_until, seq),
        )

    @staticmethod
    def _clear(conn: sqlite3.Connection, key: str) -> None:
        conn.execute("DELETE FROM breaker_failures WHERE key = ?", (key,))
        conn.execute("DELETE FROM breaker_trials WHERE key = ?", (key,))

    def _current(
        self, conn: sqlite3.Connection, key: str, now: float, *, persist: bool = False
    ) -> tuple[BreakerStateName, float, int]:
        """
        The row with the open -> half-open transition applied once the timeout has passed.

        Only ``breaker_allow`` persists that transition (``persist=True``, inside its write
        transaction): reads report it without writing, and ``breaker_record`` writes its own outcome.
        """
        state, open_until, seq = self._row(conn, key)
        if state == OPEN and now >= open_until:
            state = HALF_OPEN
            if persist:
                self._put(conn, key, state, open_until, seq)
                conn.execute("DELETE FROM breaker_trials WHERE key = ?", (key,))
        return state, open_until, seq

    # -- BreakerBackend ----------------------------------------------------------------------------

    def allow(self, key: str, cfg: BreakerConfig) -> BreakerDecision:
        with self._db.write() as conn:
            now = time.time()
            state, open_until, seq = self._current(conn, key, now, persist=True)
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
                self._put(conn, key, HALF_OPEN, open_until, seq)
                conn.execute(
                    "INSERT INTO breaker_trials (key, trial_id, expires_at) VALUES (?, ?, ?)",
                    (key, trial_id, now + cfg.trial_timeout_s),
                )
                return BreakerDecision(True, HALF_OPEN, 0.0, trial_id)
            return BreakerDecision(False, HALF_OPEN, min(cfg.reset_timeout_s, float(first_expiry) - now))

    def record(self, key: str, success: bool, cfg: BreakerConfig, trial_id: str | None) -> BreakerStateName:
        with self._db.write() as conn:
            now = time.time()
            state, _, seq = self._current(conn, key, now)
            if state == OPEN:
                return OPEN
            if state == HALF_OPEN:
                self._clear(conn, key)
                if success:
                    self._put(conn, key, CLOSED, 0.0, seq)
                    return CLOSED
                self._put(conn, key, OPEN, now + cfg.reset_timeout_s, seq)
                return OPEN
            if success:
                return CLOSED
            conn.execute("DELETE FROM breaker_failures WHERE key = ? AND ts <= ?", (key, now - cfg.window_s))
            conn.execute("INSERT INTO breaker_failures (key, ts) VALUES (?, ?)", (key, now))
            (failures,) = conn.execute(
                "SELECT COUNT(*) FROM breaker_failures WHERE key = ?", (key,)
            ).fetchone()
            if failures >= cfg.failure_threshold:
                self._clear(conn, key)
                self._put(conn, key, OPEN, now + cfg.reset_timeout_s, seq)
                return OPEN
            self._put(conn, key, CLOSED, 0.0, seq)
            return CLOSED

    def release(self, key: str, trial_id: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM breaker_trials WHERE key = ? AND trial_id = ?", (key, trial_id))

    def state(self, key: str) -> BreakerStateName:
        # A plain read in autocommit mode: no write lock, nothing persisted (reads never write).
        state, _, _ = self._current(self._db.conn(), key, time.time())
        return state

    def reset(self, key: str) -> None:
        with self._db.write() as conn:
            self._clear(conn, key)
            conn.execute("DELETE FROM breaker_state WHERE key = ?", (key,))
