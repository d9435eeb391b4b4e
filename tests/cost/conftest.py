"""Budget-store fixtures: a real SQLite file and a real, private redis-server.

The redis-server here is private to the cost tests until the shared session fixture of
``tests/fixtures/redis_server.py`` lands; it never touches the machine's own port-6379 server.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from airflow_agent_provider.stores.budget_api import BudgetStore
from airflow_agent_provider.stores.redis.budget import RedisBudgetMixin
from airflow_agent_provider.stores.redis.connection import RedisConnection
from airflow_agent_provider.stores.sqlite.budget import SQLiteBudgetMixin
from airflow_agent_provider.stores.sqlite.connection import SQLiteConnection


class SQLiteBudgetStore(SQLiteBudgetMixin, SQLiteConnection, BudgetStore):
    """Only the budget part of the SQLite store: these tests exercise exactly that."""


class RedisBudgetStore(RedisBudgetMixin, RedisConnection, BudgetStore):
    """Only the budget part of the Redis store."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def budget_redis_url() -> Iterator[str]:
    workdir = tempfile.mkdtemp(prefix="aap-cost-redis-")
    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.025)
        else:
            raise RuntimeError("redis-server did not start")
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=["sqlite", "redis"])
def budget_store_factory(request, tmp_path):
    """Returns a function that opens (another) store on the same backend data, for processes too."""
    if request.param == "sqlite":
        path = str(tmp_path / "store.db")
        spec = ("sqlite", path)
    else:
        spec = ("redis", request.getfixturevalue("budget_redis_url"), f"t{uuid.uuid4().hex[:8]}:")
    opened = []

    def factory():
        store = open_store(spec)
        opened.append(store)
        return store

    factory.spec = spec
    factory.kind = request.param
    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def budget_store(budget_store_factory):
    return budget_store_factory()


def open_store(spec):
    """Open a store from a picklable spec (used in child processes too)."""
    if spec[0] == "sqlite":
        return SQLiteBudgetStore(spec[1])
    return RedisBudgetStore(spec[1], prefix=spec[2])
