"""
The SQLite store's connection: the file, one sqlite3 connection per thread, and its schema.

Why SQLite: it is the embedded single-machine default that needs no server. Many Airflow task
processes use the same file at once, so every check-and-take runs in a ``BEGIN IMMEDIATE``
transaction (one writer at a time, readers never see half a change) on a WAL journal, with a busy
timeout so concurrent writers wait rather than fail.

Every concern of the store (limits, budget, breaker, runs) receives this one object and uses only
its public methods: ``write()`` for a write transaction, ``read()`` for a consistent read snapshot,
``conn()`` for a single autocommit read.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from airflow_agent_provider.exceptions import StoreUnavailable
from airflow_agent_provider.stores.sqlite.schema import statements


class SQLiteConnection:
    """Owns one sqlite3 connection per thread (sqlite3 connections must not cross threads)."""

    def __init__(
        self, path: str | os.PathLike[str], *, schema: Iterable[str], busy_timeout_s: float = 30.0
    ) -> None:
        """
        :param path: the database file (its directory is created).
        :param schema: schema texts run once, in one transaction, when the file is opened.
        :param busy_timeout_s: how long a writer waits for the write lock before failing.
        """
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        with self.write() as conn:
            for text in schema:
                for statement in statements(text):
                    conn.execute(statement)
            _add_missing_columns(conn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
        return conn

    def conn(self) -> sqlite3.Connection:
        """This thread's connection, in autocommit mode (a plain read takes no lock under WAL)."""
        local = self._local
        # A forked child must not reuse its parent's connection.
        if getattr(local, "pid", None) != os.getpid() or getattr(local, "conn", None) is None:
            local.conn = self._connect()
            local.pid = os.getpid()
        conn: sqlite3.Connection = local.conn
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One immediate (write-locked) transaction; commits on success, rolls back on error."""
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees one snapshot, and no lock is taken."""
        conn = self.conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def ping(self) -> None:
        try:
            self.conn().execute("SELECT 1")
        except sqlite3.Error as err:
            raise StoreUnavailable(f"sqlite store {self.path} unusable: {err}") from err

    def close(self) -> None:
        """Close this thread's connection (a later call opens a new one)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a store file of an earlier version up to date (see ``schema.ADDED_COLUMNS``)."""
    from airflow_agent_provider.stores.sqlite.schema import ADDED_COLUMNS

    for table, column, declaration in ADDED_COLUMNS:
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if columns and column not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
