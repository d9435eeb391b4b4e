"""
Connection plumbing shared by the SQLite store's mixins.

Why SQLite: it is the embedded single-machine default that needs no server. Many Airflow task
processes use the same file at once, so every check-and-take runs in a ``BEGIN IMMEDIATE``
transaction (one writer at a time, readers never see half a change) on a WAL journal, with a busy
timeout so concurrent writers wait rather than fail.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SQLiteConnection:
    """Owns one sqlite3 connection per thread (sqlite3 connections must not cross threads)."""

    kind = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._pid = os.getpid()
        with self._tx() as conn:
            self._create_schema(conn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
        return conn

    def _conn(self) -> sqlite3.Connection:
        # A forked child must not reuse its parent's connection.
        if getattr(self._local, "pid", None) != os.getpid() or getattr(self._local, "conn", None) is None:
            self._local.conn = self._connect()
            self._local.pid = os.getpid()
        return self._local.conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One immediate (write-locked) transaction; commits on success, rolls back on error."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        """Each mixin adds its tables by overriding this and calling ``super()``."""

    def ping(self) -> None:
        try:
            self._conn().execute("SELECT 1")
        except sqlite3.Error as err:
            from airflow_agent_provider.stores.base import StoreUnavailable

            raise StoreUnavailable(f"sqlite store {self.path} unusable: {err}") from err

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
