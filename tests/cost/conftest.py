"""Budget-store fixtures over both backends, built on the shared ``store_url`` fixture.

``store_url`` (tests/fixtures/redis_server.py) is parametrised over a fresh SQLite file and a unique
key prefix on the session's private redis-server. A URL is picklable, so the process tests open
the very same store in each child with ``store_from_url``.
"""

from __future__ import annotations

import pytest

from airflow_agent_provider.stores.config import store_from_url


@pytest.fixture
def budget_store_factory(store_url: str, store_kind: str):
    """A function that opens (another) store on the same data; all are closed after the test."""
    opened = []

    def factory():
        store = store_from_url(store_url)
        opened.append(store)
        return store

    factory.url = store_url
    factory.kind = store_kind
    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def budget_store(budget_store_factory):
    return budget_store_factory()
