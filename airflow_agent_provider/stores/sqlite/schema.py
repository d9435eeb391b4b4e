"""
The SQLite store's tables, for every concern, in one place.

Why one module: concerns read each other's tables (the run index groups the budget ledger and counts
the rate-limit log), so the schema is a contract between them, not a detail of one. The connection
creates every table when it opens the file (``CREATE ... IF NOT EXISTS``: an existing file keeps its
rows).

- rate limits: ``rl_log`` one row per grant (time, tokens); ``rl_window`` per key and window length
  a running total of the log entries still inside the window and the cursor up to which entries have
  left it; ``rl_lease`` concurrency leases with their expiry; ``rl_pause`` provider-feedback pauses;
- budget: ``budget_reservation`` (one row per reservation id), ``budget_reservation_scope`` (its
  scopes), ``budget_spent`` (settled nano-dollars and calls per scope), ``budget_ledger`` (one row
  per charged call);
- circuit breaker: ``breaker_state`` (one row per key), ``breaker_failures`` (the sliding window),
  ``breaker_trials`` (half-open trial leases);
- run index: ``run_index`` (one row per recorded run, the record as JSON).
"""

from __future__ import annotations

LIMITS = """
CREATE TABLE IF NOT EXISTS rl_log (
    key TEXT NOT NULL, gid TEXT NOT NULL, t REAL NOT NULL, tokens INTEGER NOT NULL,
    PRIMARY KEY (key, gid)
);
CREATE INDEX IF NOT EXISTS rl_log_by_time ON rl_log (key, t);
CREATE TABLE IF NOT EXISTS rl_window (
    key TEXT NOT NULL, unit TEXT NOT NULL, window_s REAL NOT NULL,
    cursor REAL NOT NULL, total INTEGER NOT NULL,
    PRIMARY KEY (key, unit, window_s)
);
CREATE TABLE IF NOT EXISTS rl_lease (
    key TEXT NOT NULL, gid TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (key, gid)
);
CREATE TABLE IF NOT EXISTS rl_pause (key TEXT PRIMARY KEY, until REAL NOT NULL);
"""

BUDGET = """
CREATE TABLE IF NOT EXISTS budget_reservation (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,            -- reserved | settled | released
    amount_nano INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    scopes TEXT NOT NULL,           -- JSON list of scope keys
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS budget_reservation_scope (
    scope TEXT NOT NULL,
    reservation_id TEXT NOT NULL,
    PRIMARY KEY (scope, reservation_id)
);
CREATE TABLE IF NOT EXISTS budget_spent (
    scope TEXT PRIMARY KEY,
    spent_nano INTEGER NOT NULL DEFAULT 0,
    calls INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS budget_ledger (
    entry_id TEXT PRIMARY KEY,
    reservation_id TEXT,
    dag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    module TEXT NOT NULL,
    agent TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    usd REAL,
    price_source TEXT NOT NULL,
    ts REAL NOT NULL,
    delivery TEXT NOT NULL DEFAULT 'realtime'
);
CREATE INDEX IF NOT EXISTS budget_ledger_run ON budget_ledger (dag_id, run_id, ts);
"""

BREAKER = """
CREATE TABLE IF NOT EXISTS breaker_state (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    open_until REAL NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS breaker_failures (key TEXT NOT NULL, ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS breaker_failures_key ON breaker_failures (key, ts);
CREATE TABLE IF NOT EXISTS breaker_trials (
    key TEXT NOT NULL, trial_id TEXT NOT NULL, expires_at REAL NOT NULL,
    PRIMARY KEY (key, trial_id)
);
"""

RUNS = """
CREATE TABLE IF NOT EXISTS run_index (
    dag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    ended_at REAL,
    recorded_at REAL NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (dag_id, run_id)
);
CREATE INDEX IF NOT EXISTS run_index_recent ON run_index (recorded_at);
CREATE INDEX IF NOT EXISTS run_index_dag_recent ON run_index (dag_id, recorded_at);
"""

#: Every table of the store, in the order they are created.
ALL = (LIMITS, BUDGET, BREAKER, RUNS)

#: Columns added after a table was first released: ``(table, column, declaration)``. A store file
#: written by an earlier version gets them when it is opened (``CREATE TABLE IF NOT EXISTS`` keeps
#: the old table as it is); the declaration's default is what the old rows mean.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("budget_ledger", "delivery", "TEXT NOT NULL DEFAULT 'realtime'"),
)


def statements(schema: str) -> list[str]:
    """The statements of one schema text (``executescript`` would commit the caller's transaction)."""
    return [statement for statement in schema.split(";") if statement.strip()]
