"""The embedded SQLite store: the single-machine default."""

from __future__ import annotations

from airflow_agent_provider.stores.base import Store
from airflow_agent_provider.stores.sqlite.breaker import SQLiteBreakerMixin
from airflow_agent_provider.stores.sqlite.budget import SQLiteBudgetMixin
from airflow_agent_provider.stores.sqlite.connection import SQLiteConnection
from airflow_agent_provider.stores.sqlite.limits import SQLiteLimitsMixin
from airflow_agent_provider.stores.sqlite.runs import SQLiteRunsMixin


class SQLiteStore(
    SQLiteLimitsMixin, SQLiteBudgetMixin, SQLiteBreakerMixin, SQLiteRunsMixin, SQLiteConnection, Store
):
    """SQLite file shared by every process on one machine."""


__all__ = ["SQLiteStore"]
