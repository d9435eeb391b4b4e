"""
What the Operations views share: the "unknown" answer, the thresholds, and the latest run records.

Airflow-free like the views themselves (see :mod:`airflow_agent_provider.plugins.views`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_agent_provider.stores.base import Store
    from airflow_agent_provider.stores.runs_api import RunRecord

#: Spend at or above this share of a budget is shown as a warning, at 100 % as over.
WARN_RATIO = 0.8
#: Runs whose ledgers feed "most expensive agents and models".
TOP_FROM_RUNS = 50

#: Whether the user may read a DAG's runs (the caller's policy).
Readable = Callable[[str], bool]


class Unknown(LookupError):
    """The store knows nothing about what was asked: ``what`` is ``dag``, ``run`` or ``key``."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what


def latest_records(store: Store, readable: Readable) -> dict[str, RunRecord]:
    """The newest run record of each DAG the user may read, among the store's last 500 runs."""
    latest: dict[str, RunRecord] = {}
    for record in store.runs_list(None, limit=500):
        if readable(record.dag_id):
            latest.setdefault(record.dag_id, record)
    return latest


__all__ = ["TOP_FROM_RUNS", "WARN_RATIO", "Readable", "Unknown", "latest_records"]
