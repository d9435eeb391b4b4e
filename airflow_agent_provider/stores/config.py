"""
Which store a URL means, and where the default SQLite file lives.

Kept free of Airflow imports: the engines and the CLI choose a store from a plain URL, and only
``hooks/store.py`` reads Airflow's configuration and connections to produce that URL.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from airflow_agent_provider.stores.base import Store

SQLITE_FILENAME = "agent_provider.db"
DEFAULT_REDIS_PREFIX = "aap:"


def default_sqlite_path() -> Path:
    """``$AIRFLOW_HOME/agent_provider.db``: next to Airflow's own files, shared by local workers."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return Path(home) / SQLITE_FILENAME


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def sqlite_path_from_url(url: str) -> Path:
    """
    ``sqlite:///abs/path.db`` and ``sqlite:////abs/path.db`` both mean ``/abs/path.db``.

    Relative paths are refused: Airflow task processes do not share a working directory, so a
    relative file would silently split one limit into several.
    """
    rest = url[len("sqlite://") :]
    if not rest or rest == "/":
        return default_sqlite_path()
    if not rest.startswith("/"):
        raise ValueError(f"sqlite store URL must be sqlite:///absolute/path.db, got {url!r}")
    path = "/" + rest.lstrip("/")
    return Path(os.path.expanduser(path))


def _split_prefix(url: str) -> tuple[str, str]:
    """Take our own ``prefix`` query parameter out of a Redis URL (redis-py would reject it)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = DEFAULT_REDIS_PREFIX
    rest = []
    for name, value in query:
        if name == "prefix":
            prefix = value
        else:
            rest.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(rest))), prefix


def store_from_url(url: str) -> Store:
    """
    Open the store a URL names: ``sqlite:///path.db``, ``redis://host:port/db``, ``rediss://...``.

    A Redis URL may carry ``?prefix=name:`` to give several deployments one server.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        from airflow_agent_provider.stores.sqlite import SQLiteStore

        return SQLiteStore(sqlite_path_from_url(url))
    if scheme in ("redis", "rediss", "unix"):
        from airflow_agent_provider.stores.redis import RedisStore

        client_url, prefix = _split_prefix(url)
        # The asyncio client of each event loop is opened from the same URL and options.
        options = {"socket_connect_timeout": 5, "health_check_interval": 30}
        return RedisStore(client_url, prefix=prefix, client_options=options)
    raise ValueError(
        f"unknown store URL scheme {scheme!r} in {mask_url(url)!r}: "
        "use sqlite:///absolute/path.db, redis://host:port/db or rediss://host:port/db"
    )
