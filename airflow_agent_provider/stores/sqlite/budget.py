"""
Budget operations of the SQLite store (see stores/budget_api.py; tables in ``schema.py``).

Each operation is one ``BEGIN IMMEDIATE`` transaction, so the check of every scope and the take
happen under one write lock: two processes can never both see the same room in a budget.
Expiry uses this machine's clock, which every process of a single-machine deployment shares.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from airflow_agent_provider.stores.sqlite.connection import SQLiteConnection

_LIVE_RESERVED = """
SELECT COALESCE(SUM(r.amount_nano), 0) FROM budget_reservation_scope s
JOIN budget_reservation r ON r.id = s.reservation_id
WHERE s.scope = ? AND r.state = 'reserved' AND r.expires_at > ?
"""


class SQLiteBudget(BudgetBackend):
    """Reservations, spend and ledger in four tables of the store's SQLite file."""

    def __init__(self, db: SQLiteConnection) -> None:
        self._db = db

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _scope_state(conn: sqlite3.Connection, scope: str, now: float) -> tuple[int, int, int]:
        row = conn.execute("SELECT spent_nano, calls FROM budget_spent WHERE scope = ?", (scope,)).fetchone()
        spent, calls = (int(row[0]), int(row[1])) if row else (0, 0)
        reserved = int(conn.execute(_LIVE_RESERVED, (scope, now)).fetchone()[0])
        return spent, reserved, calls

    @staticmethod
    def _tightest(conn: sqlite3.Connection, scopes: Sequence[tuple[str, int]], now: float) -> ReserveResult:
        best: tuple[float, int, int, int] | None = None
        for scope, limit in scopes:
            spent, reserved, _ = SQLiteBudget._scope_state(conn, scope, now)
            room = float("inf") if limit < 0 else limit - spent - reserved
            if best is None or room < best[0]:
                best = (room, spent, reserved, limit)
        if best is None:
            return ReserveResult(True, None, 0.0, 0.0, float("inf"))
        _, spent, reserved, limit = best
        return ReserveResult(
            True, None, from_nano(spent), from_nano(reserved), float("inf") if limit < 0 else from_nano(limit)
        )

    # -- BudgetStore ---------------------------------------------------------------------------

    def reserve(
        self, reservation_id: str, scopes: tuple[tuple[str, float], ...], amount: float, ttl_s: float
    ) -> ReserveResult:
        nano_scopes = [(scope, limit_to_nano(limit)) for scope, limit in scopes]
        amount_nano = to_nano_up(amount)
        with self._db.write() as conn:
            now = time.time()
            row = conn.execute(
                "SELECT state, expires_at FROM budget_reservation WHERE id = ?", (reservation_id,)
            ).fetchone()
            if row is not None:
                state, expires_at = row
                if state == "settled" or (state == "reserved" and expires_at > now):
                    result = self._tightest(conn, nano_scopes, now)
                    return ReserveResult(
                        True, None, result.spent, result.reserved, result.limit, duplicate=True
                    )
                # Expired or released: the id may reserve afresh.
                conn.execute(
                    "DELETE FROM budget_reservation_scope WHERE reservation_id = ?", (reservation_id,)
                )
                conn.execute("DELETE FROM budget_reservation WHERE id = ?", (reservation_id,))
            for scope, limit in nano_scopes:
                if limit < 0:
                    continue
                spent, reserved, _ = self._scope_state(conn, scope, now)
                if spent + reserved + amount_nano > limit:
                    return ReserveResult(
                        False, scope, from_nano(spent), from_nano(reserved), from_nano(limit)
                    )
            conn.execute(
                "INSERT INTO budget_reservation (id, state, amount_nano, expires_at, scopes, updated_at)"
                " VALUES (?, 'reserved', ?, ?, ?, ?)",
                (reservation_id, amount_nano, now + ttl_s, json.dumps([s for s, _ in nano_scopes]), now),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO budget_reservation_scope (scope, reservation_id) VALUES (?, ?)",
                [(scope, reservation_id) for scope, _ in nano_scopes],
            )
            # Forget long-finished reservations; their idempotency window is over.
            conn.execute(
                "DELETE FROM budget_reservation_scope WHERE reservation_id IN (SELECT id FROM budget_reservation"
                " WHERE updated_at < ? AND (state != 'reserved' OR expires_at < ?))",
                (now - RESERVATION_RETENTION_S, now - RESERVATION_RETENTION_S),
            )
            conn.execute(
                "DELETE FROM budget_reservation WHERE updated_at < ? AND (state != 'reserved' OR expires_at < ?)",
                (now - RESERVATION_RETENTION_S, now - RESERVATION_RETENTION_S),
            )
            return self._tightest(conn, nano_scopes, now)

    def settle(
        self,
        reservation_id: str,
        actual: float | None,
        ledger_entries: tuple[LedgerEntry, ...],
        scopes: tuple[str, ...],
    ) -> bool:
        charge = 0 if actual is None else to_nano(actual)
        with self._db.write() as conn:
            now = time.time()
            row = conn.execute(
                "SELECT state, scopes FROM budget_reservation WHERE id = ?", (reservation_id,)
            ).fetchone()
            if row is not None and row[0] == "settled":
                return False
            charged_scopes = json.loads(row[1]) if row is not None else list(scopes)
            if row is None:
                conn.execute(
                    "INSERT INTO budget_reservation (id, state, amount_nano, expires_at, scopes, updated_at)"
                    " VALUES (?, 'settled', 0, ?, ?, ?)",
                    (reservation_id, now, json.dumps(charged_scopes), now),
                )
            else:
                conn.execute(
                    "UPDATE budget_reservation SET state = 'settled', updated_at = ? WHERE id = ?",
                    (now, reservation_id),
                )
            conn.executemany(
                "INSERT INTO budget_spent (scope, spent_nano, calls) VALUES (?, ?, 1)"
                " ON CONFLICT (scope) DO UPDATE SET spent_nano = spent_nano + excluded.spent_nano, calls = calls + 1",
                [(scope, charge) for scope in charged_scopes],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO budget_ledger (entry_id, reservation_id, dag_id, run_id, module, agent, model,"
                " provider, input_tokens, output_tokens, cached_input_tokens, usd, price_source, ts, delivery)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.entry_id,
                        e.reservation_id or reservation_id,
                        e.dag_id,
                        e.run_id,
                        e.module,
                        e.agent,
                        e.model,
                        e.provider,
                        e.input_tokens,
                        e.output_tokens,
                        e.cached_input_tokens,
                        e.usd,
                        e.price_source,
                        now if e.ts is None else e.ts,
                        e.delivery,
                    )
                    for e in ledger_entries
                ],
            )
            return True

    def release(self, reservation_id: str) -> bool:
        with self._db.write() as conn:
            now = time.time()
            cur = conn.execute(
                "UPDATE budget_reservation SET state = 'released', updated_at = ? WHERE id = ? AND state = 'reserved'"
                " AND expires_at > ?",
                (now, reservation_id, now),
            )
            return bool(cur.rowcount > 0)

    def totals(self, scope: str) -> ScopeTotals:
        # A read transaction, so that spent and reserved are one consistent snapshot.
        with self._db.read() as conn:
            spent, reserved, calls = self._scope_state(conn, scope, time.time())
        return ScopeTotals(from_nano(spent), from_nano(reserved), calls)

    def ledger_entries(self, dag_id: str, run_id: str) -> list[LedgerEntry]:
        rows = (
            self._db.conn()
            .execute(
                "SELECT entry_id, dag_id, run_id, module, agent, model, provider, input_tokens, output_tokens,"
                " cached_input_tokens, usd, price_source, ts, reservation_id, delivery FROM budget_ledger"
                " WHERE dag_id = ? AND run_id = ? ORDER BY ts, entry_id",
                (dag_id, run_id),
            )
            .fetchall()
        )
        return [LedgerEntry(*row) for row in rows]
