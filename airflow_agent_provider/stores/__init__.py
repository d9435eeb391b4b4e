"""
Shared state of the limits, cost and resilience engines (see ``base.py``).

``store_from_url`` opens a store from a URL; ``hooks/store.py`` turns Airflow's configuration into
that URL. Nothing in this package imports Airflow.
"""

from __future__ import annotations

from airflow_agent_provider.stores.base import Store, StoreUnavailable
from airflow_agent_provider.stores.config import default_sqlite_path, mask_url, store_from_url
from airflow_agent_provider.stores.limits_api import Grant, RateLimitStore, Tier

__all__ = [
    "Grant",
    "RateLimitStore",
    "Store",
    "StoreUnavailable",
    "Tier",
    "default_sqlite_path",
    "mask_url",
    "store_from_url",
]
