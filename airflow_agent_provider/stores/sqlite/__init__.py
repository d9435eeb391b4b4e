"""
The embedded SQLite store: the single-machine default.

``SQLiteStore`` is a facade: it opens one :class:`SQLiteConnection` (the file, per-thread
connections, the schema of ``schema.py``) and composes one backend per concern around it; the
public methods, with their argument checks, come from :class:`~airflow_agent_provider.stores.base.Store`.
The async twins run the sync operations on the stores' thread pool (``stores.offload``).
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_agent_provider.stores.base import Store
from airflow_agent_provider.stores.sqlite import schema
from airflow_agent_provider.stores.sqlite.breaker import SQLiteBreaker
from airflow_agent_provider.stores.sqlite.budget import SQLiteBudget
from airflow_agent_provider.stores.sqlite.connection import SQLiteConnection
from airflow_agent_provider.stores.sqlite.limits import SQLiteLimits
from airflow_agent_provider.stores.sqlite.runs import SQLiteRuns


class SQLiteStore(Store):
    """SQLite file shared by every process on one machine."""

    kind = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 30.0) -> None:
        """See :class:`SQLiteConnection` for the parameters."""
        self.connection = SQLiteConnection(path, schema=schema.ALL, busy_timeout_s=busy_timeout_s)
        super().__init__(
            limits=SQLiteLimits(self.connection),
            budget=SQLiteBudget(self.connection),
            breaker=SQLiteBreaker(self.connection),
            runs=SQLiteRuns(self.connection),
        )

    @property
    def path(self) -> Path:
        """The database file."""
        return self.connection.path

    def ping(self) -> None:
        self.connection.ping()

    def close(self) -> None:
        self.connection.close()


__all__ = ["SQLiteConnection", "SQLiteStore"]
