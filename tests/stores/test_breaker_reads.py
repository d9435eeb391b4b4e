"""Reading a breaker never writes (issue 13: a GET on a breaker took a write lock and persisted a
transition). On both stores: the stored state stays ``open`` after a read reports ``half_open``; only
``allow`` moves it; on SQLite a read works while another process holds the write lock; on Redis a
read leaves the server's change counter untouched."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from airflow_agent_provider.stores.breaker_api import BreakerConfig

KEY = "openai/gpt-5-mini"
CFG = BreakerConfig(failure_threshold=1, reset_timeout_s=0.2)


def _stored(store, store_kind):
    """The persisted state row / hash, read behind the store's back."""
    if store_kind == "sqlite":
        with sqlite3.connect(store.path) as conn:
            state = conn.execute(
                "SELECT state, open_until, seq FROM breaker_state WHERE key = ?", (KEY,)
            ).fetchone()
            trials = conn.execute("SELECT COUNT(*) FROM breaker_trials WHERE key = ?", (KEY,)).fetchone()[0]
        return state, trials
    client = store.connection.client
    state_key, _, trials_key = store.connection.keys.breaker(KEY)
    return client.hgetall(state_key), client.zcard(trials_key), client.ttl(state_key) > 0


def _changes(store):
    return store.connection.client.info("persistence")["rdb_changes_since_last_save"]


def test_reading_a_lapsed_open_breaker_changes_nothing(store, store_kind):
    assert store.breaker_record(KEY, False, CFG) == "open"
    time.sleep(0.3)
    before = _stored(store, store_kind)
    changes = _changes(store) if store_kind == "redis" else None

    assert store.breaker_state(KEY) == "half_open"
    assert store.breaker_state(KEY) == "half_open"
    assert asyncio.run(store.abreaker_state(KEY)) == "half_open"
    assert store.breaker_state("never/seen") == "closed"

    assert _stored(store, store_kind) == before
    assert (before[0][0] if store_kind == "sqlite" else before[0][b"state"]) in ("open", b"open")
    if store_kind == "redis":
        assert _changes(store) == changes

    # Only allow takes the transition, when it admits the first trial.
    trial = store.breaker_allow(KEY, CFG)
    assert trial.allowed
    assert trial.state == "half_open"
    after = _stored(store, store_kind)
    assert after != before
    assert (after[0][0] if store_kind == "sqlite" else after[0][b"state"]) in ("half_open", b"half_open")


def test_sqlite_read_needs_no_write_lock(store, store_kind):
    if store_kind != "sqlite":
        return
    store.breaker_record(KEY, False, BreakerConfig(failure_threshold=1, reset_timeout_s=60))
    blocker = sqlite3.connect(store.path, timeout=0.1, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        store.connection.conn().execute("PRAGMA busy_timeout=100")  # fail fast if a read ever waits for it
        assert store.breaker_state(KEY) == "open"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
