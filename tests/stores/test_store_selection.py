"""Store URLs, the default SQLite path and the Airflow-facing resolver (``hooks/store.py``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from airflow_agent_provider.hooks import store as store_hook
from airflow_agent_provider.stores import default_sqlite_path, mask_url, store_from_url
from airflow_agent_provider.stores.redis import RedisStore
from airflow_agent_provider.stores.sqlite import SQLiteStore


@pytest.fixture
def fresh_resolver():
    store_hook.reset_store()
    yield
    store_hook.reset_store()


def test_sqlite_urls(tmp_path):
    for url in (f"sqlite:///{tmp_path}/a.db", f"sqlite://{tmp_path}/a.db"):
        store = store_from_url(url)
        try:
            assert isinstance(store, SQLiteStore)
            assert store.path == tmp_path / "a.db"
        finally:
            store.close()
    with pytest.raises(ValueError, match="absolute"):
        store_from_url("sqlite://relative.db")


def test_redis_url(redis_server):
    store = store_from_url(redis_server.url + "?prefix=sel:")
    try:
        assert isinstance(store, RedisStore)
        assert store.prefix == "sel:"
        store.ping()
    finally:
        store.close()


def test_unknown_scheme_is_clear_and_masks_password():
    with pytest.raises(ValueError, match="unknown store URL scheme 'postgres'") as info:
        store_from_url("postgres://user:hunter22@db/x")
    assert "hunter22" not in str(info.value)
    assert "***" in str(info.value)


def test_mask_url():
    assert mask_url("redis://:s3cret@h:6379/0") == "redis://:***@h:6379/0"
    assert mask_url("rediss://u:p@h/1") == "rediss://u:***@h/1"
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_default_sqlite_path(monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", "/srv/airflow")
    assert default_sqlite_path() == Path("/srv/airflow/agent_provider.db")
    monkeypatch.delenv("AIRFLOW_HOME")
    assert default_sqlite_path() == Path(os.path.expanduser("~/airflow/agent_provider.db"))


def test_get_store_uses_store_url_and_caches(fresh_resolver, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__STORE_URL", f"sqlite:///{tmp_path}/s.db")
    monkeypatch.delenv("AIRFLOW__AGENT_PROVIDER__REDIS_CONN_ID", raising=False)
    store = store_hook.get_store()
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "s.db"
    assert store_hook.get_store() is store


def test_get_store_defaults_to_sqlite_under_airflow_home(fresh_resolver, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__STORE_URL", "")
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__REDIS_CONN_ID", "")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    store = store_hook.get_store()
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "agent_provider.db"


def test_get_store_from_redis_connection(fresh_resolver, monkeypatch, redis_server):
    # A real Airflow Connection, defined the way deployments do: an AIRFLOW_CONN_* variable.
    monkeypatch.setenv(
        "AIRFLOW_CONN_AAP_TEST_REDIS",
        f"redis://:{'pw-not-set-on-server'}@{redis_server.host}:{redis_server.port}/2?prefix=conn%3A",
    )
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__REDIS_CONN_ID", "aap_test_redis")
    url = store_hook.resolve_store_url()
    assert url == f"redis://:pw-not-set-on-server@{redis_server.host}:{redis_server.port}/2?prefix=conn:"
    # The server has no password; build the store from the same connection without one.
    monkeypatch.setenv("AIRFLOW_CONN_AAP_TEST_REDIS", f"redis://{redis_server.host}:{redis_server.port}/2")
    store = store_hook.get_store()
    assert isinstance(store, RedisStore)
    store.ping()


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_resolved_url_is_logged_masked(fresh_resolver, monkeypatch):
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__STORE_URL", "redis://:topsecret99@127.0.0.1:1/0")
    monkeypatch.delenv("AIRFLOW__AGENT_PROVIDER__REDIS_CONN_ID", raising=False)
    # Our own handler: Airflow's logging set-up (loaded by other tests) may reroute or filter caplog.
    logger, handler = logging.getLogger("airflow_agent_provider.hooks.store"), _Collect()
    old_level, old_disabled = logger.level, logger.disabled
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.disabled = False
    try:
        store_hook.get_store()  # redis-py connects lazily: building the store does not connect
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.disabled = old_disabled
    text = "\n".join(handler.lines)
    assert "redis" in text
    assert "***" in text
    assert "topsecret99" not in text


def test_aget_store_resolves_off_the_loop_and_shares_the_cache(fresh_resolver, monkeypatch, redis_server):
    import asyncio

    monkeypatch.setenv("AIRFLOW_CONN_AAP_ASYNC_REDIS", f"redis://{redis_server.host}:{redis_server.port}/3")
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__REDIS_CONN_ID", "aap_async_redis")

    async def scenario():
        first = await store_hook.aget_store()
        second = await store_hook.aget_store()
        await first.aping()
        await first.aclose()
        return first, second

    first, second = asyncio.run(scenario())
    assert isinstance(first, RedisStore)
    assert first is second
    assert store_hook.get_store() is first  # the worker-side resolver sees the same store
    assert first.connection.url == f"redis://{redis_server.host}:{redis_server.port}/3"
