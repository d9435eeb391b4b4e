"""
The Airflow-facing store resolver: Airflow settings and connections -> one ``Store`` per process.

This is the only module of the limits/stores side that imports Airflow. Settings, in order:

1. ``[agent_provider] redis_conn_id`` (env ``AIRFLOW__AGENT_PROVIDER__REDIS_CONN_ID``): the Redis of
   that Airflow Connection, so that its password lives in Airflow's secrets, not in a config file;
2. ``[agent_provider] store_url`` (env ``AIRFLOW__AGENT_PROVIDER__STORE_URL``);
3. nothing set: the SQLite file ``$AIRFLOW_HOME/agent_provider.db``.

The store is cached per process (and rebuilt in a forked child), because every operator, hook and
trigger of a worker must count against the same connections rather than open their own.

Triggers use :func:`aget_store`: on the triggerer's event loop the first call resolves the settings
(the Redis connection through the Task SDK's async connection lookup) and opens the store off the
loop; later calls return the cached store at once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_agent_provider.stores.config import default_sqlite_path, mask_url, store_from_url

if TYPE_CHECKING:
    from airflow_agent_provider.stores.base import Store

log = logging.getLogger(__name__)

_SECTION = "agent_provider"
_lock = threading.Lock()
_cached: tuple[int, Store] | None = None


def _setting(name: str) -> str:
    env = os.environ.get(f"AIRFLOW__{_SECTION.upper()}__{name.upper()}")
    if env is not None:
        return env.strip()
    try:
        from airflow.configuration import conf

        return (conf.get(_SECTION, name, fallback="") or "").strip()
    except Exception:  # an unreadable airflow.cfg must not hide the SQLite default
        log.debug("could not read [%s] %s from Airflow configuration", _SECTION, name, exc_info=True)
        return ""


def redis_url_from_connection(conn_id: str) -> str:
    """
    ``redis[s]://[user:password@]host:port/db`` from an Airflow Connection (type redis or any).

    Follows the Redis provider's conventions: ``schema`` or extra ``db`` is the database number,
    extra ``ssl`` (true) selects ``rediss``; extra ``prefix`` is our key prefix.
    """
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else json.loads(conn.extra or "{}")
    if conn.password:
        try:
            from airflow.sdk.log import mask_secret

            mask_secret(conn.password)
        except ImportError:  # pragma: no cover - older task SDK
            pass
    return _redis_url(conn, extra)


async def aredis_url_from_connection(conn_id: str) -> str:
    """:func:`redis_url_from_connection` for the event loop (the Task SDK's async connection lookup)."""
    from airflow.sdk import BaseHook

    conn = await BaseHook.aget_connection(conn_id)
    extra = await conn.aextra_dejson() if hasattr(conn, "aextra_dejson") else conn.extra_dejson
    if conn.password:
        from airflow.sdk.log import amask_secret

        await amask_secret(conn.password)
    return _redis_url(conn, extra if isinstance(extra, dict) else {})


def _redis_url(conn: Any, extra: dict[str, Any]) -> str:
    ssl = str(extra.get("ssl", "")).lower() in ("1", "true", "yes") or conn.conn_type == "rediss"
    db = extra.get("db", conn.schema or 0) or 0
    auth = ""
    if conn.password:
        auth = f"{quote(conn.login or '', safe='')}:{quote(conn.password, safe='')}@"
    elif conn.login:
        auth = f"{quote(conn.login, safe='')}@"
    url = f"{'rediss' if ssl else 'redis'}://{auth}{conn.host or 'localhost'}:{conn.port or 6379}/{db}"
    if extra.get("prefix"):
        url += f"?prefix={quote(str(extra['prefix']), safe=':')}"
    return url


def resolve_store_url() -> str:
    """The store URL the settings above select."""
    conn_id = _setting("redis_conn_id")
    if conn_id:
        return redis_url_from_connection(conn_id)
    url = _setting("store_url")
    if url:
        return url
    return f"sqlite:///{default_sqlite_path()}"


def get_store() -> Store:
    """The process-wide shared store."""
    cached = _cached_store()
    if cached is not None:
        return cached
    return _install(resolve_store_url())


async def aget_store() -> Store:
    """
    :func:`get_store` for the event loop: nothing that blocks runs on the loop.

    The settings are read and the store opened (SQLite: the file and its schema; Redis: the client
    and the redis import) off the loop, once per process; then the cached store comes back at once.
    """
    cached = _cached_store()
    if cached is not None:
        return cached
    from airflow_agent_provider._single_flight import single_flight

    # A fleet's triggers all start without a store: one opens it, the rest await that.
    return await single_flight(("store", os.getpid()), _aopen_store)


async def _aopen_store() -> Store:
    cached = _cached_store()
    if cached is not None:
        return cached
    from airflow_agent_provider.stores.offload import run_blocking

    conn_id = await run_blocking(_setting, "redis_conn_id")
    if conn_id:
        url = await aredis_url_from_connection(conn_id)
    else:
        url = await run_blocking(resolve_store_url)
    return await run_blocking(_install, url)


def _cached_store() -> Store | None:
    cached = _cached
    return cached[1] if cached is not None and cached[0] == os.getpid() else None


def _install(url: str) -> Store:
    global _cached
    pid = os.getpid()
    with _lock:
        if _cached is not None and _cached[0] == pid:
            return _cached[1]
        store = store_from_url(url)
        log.info("agent provider store: %s (%s)", store.kind, mask_url(url))
        _cached = (pid, store)
        return store


def reset_store() -> None:
    """Forget the cached store (closing it); the next ``get_store`` reads the settings again."""
    global _cached
    with _lock:
        if _cached is not None and _cached[0] == os.getpid():
            _cached[1].close()
        _cached = None
