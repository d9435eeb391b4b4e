"""
Process-wide caches of the hooks: SDK imports (off the event loop, once) and SDK clients.

Sync clients are shared by the whole process (they are thread-safe); async clients per event loop,
so all triggers of one connection on a triggerer share one client and its connection pool. Both are
keyed by :attr:`ClientSettings.cache_key` (connection id, key fingerprint, base URL, options): a
rotated key gets a new client.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_agent_provider._single_flight import single_flight
from airflow_agent_provider.hooks._sdk_clients import build_client

if TYPE_CHECKING:
    from airflow_agent_provider.hooks._client_settings import ClientSettings

T = TypeVar("T")

#: The module of each provider's SDK (imported off the loop on the async path).
SDK_MODULES: dict[str, str] = {"openai": "openai", "anthropic": "anthropic"}
#: The SDK's resource classes a model call uses, as (package, exported name). The SDKs load them
#: lazily, on first attribute access (``client.chat.completions``), which in a triggerer happens on
#: its event loop: OpenAI's chat completions pull in about twenty modules there.
SDK_CALL_RESOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "openai": (
        ("openai.resources.chat", "AsyncChat"),
        ("openai.resources.chat.completions", "AsyncCompletions"),
    ),
    "anthropic": (("anthropic.resources.messages", "AsyncMessages"),),
}


def warm_sdk(provider: str) -> None:
    """Import the SDK and compute what its adapter caches about it (blocking: off the loop, or in a worker's preload)."""
    importlib.import_module(SDK_MODULES[provider])
    for package, name in SDK_CALL_RESOURCES[provider]:
        getattr(importlib.import_module(package), name)
    if provider == "anthropic":
        from airflow_agent_provider.llm.anthropic_adapter import _sdk_accepts

        _sdk_accepts("temperature")


async def aimport_sdk(provider: str) -> None:
    """Import ``provider``'s SDK off the event loop, once: concurrent callers await the same import."""
    name = SDK_MODULES[provider]
    if name in sys.modules and name in _warmed_sdks:
        return
    # A failed import is not kept: the next caller tries again.
    await single_flight(("sdk-import", name), lambda: asyncio.to_thread(warm_sdk, provider))
    _warmed_sdks.add(name)


_warmed_sdks: set[str] = set()


async def awarm(provider: str | None = None, models: Iterable[tuple[str, str]] = ()) -> None:
    """
    Load off the event loop what the first model call on it would otherwise load on it.

    Imports the SDK of ``provider`` (both when None) and genai-prices with its price data (and the
    lookups of ``models``, ``(provider, model)`` pairs). Once per process: a trigger can await it at
    the start of ``run()`` at no cost after the first. ``acomplete`` imports the SDK the same way by
    itself; awaiting this first also keeps the price lookup of the guard off the loop.
    """
    from airflow_agent_provider.cost.pricing import awarm_prices

    providers = [provider] if provider else list(SDK_MODULES)
    for name in providers:
        await aimport_sdk(name)
    await awarm_prices(list(models))


_sync_lock = threading.Lock()
_sync_clients: dict[tuple[Any, ...], Any] = {}
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)
_MAX_CLIENTS = 256


def sync_client(settings: ClientSettings) -> Any:
    """The process's sync client for ``settings`` (sync clients are thread-safe)."""
    key = settings.cache_key
    client = _sync_clients.get(key)
    if client is None:
        client = build_client(settings, asynchronous=False)
        with _sync_lock:
            if len(_sync_clients) >= _MAX_CLIENTS:
                _sync_clients.clear()
            client = _sync_clients.setdefault(key, client)
    return client


async def async_client(settings: ClientSettings) -> Any:
    """
    The async client for ``settings`` on the running event loop: built (off the loop: importing the
    SDK and creating its TLS context block) on first use, then shared by every caller on that loop.
    """
    clients = _async_clients.setdefault(asyncio.get_running_loop(), {})
    key = settings.cache_key
    client = clients.get(key)
    if client is None:
        # Hundreds of triggers of one connection start together: one builds, the rest await it.
        client = await single_flight(("sdk-client", key), lambda: _abuild(settings, clients))
    return client


async def _abuild(settings: ClientSettings, clients: dict[tuple[Any, ...], Any]) -> Any:
    key = settings.cache_key
    client = clients.get(key)
    if client is not None:
        return client
    await aimport_sdk(settings.provider)
    built = await asyncio.to_thread(build_client, settings, asynchronous=True)
    if len(clients) >= _MAX_CLIENTS:
        for old in list(clients.values()):
            await old.close()
        clients.clear()
    clients[key] = built
    return built


#: How long the triggers of one event loop share a connection that one of them read, in seconds.
#: Hundreds of agent triggers of one connection start together, and every read is a request to the
#: triggerer's supervisor, which is also busy building their workloads; a key rotated in the
#: Connection is picked up by the triggers that start after this long.
CONNECTION_TTL_S = 30.0

_connections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, tuple[float, Any]]] = (
    weakref.WeakKeyDictionary()
)


async def shared_connection(conn_id: str, read: Callable[[], Awaitable[T]]) -> T:
    """
    ``read()`` (a connection and what the hook derives from it), shared by the running loop's callers
    of ``conn_id`` for :data:`CONNECTION_TTL_S`; concurrent callers await one read.
    """
    cache = _connections.setdefault(asyncio.get_running_loop(), {})
    hit = cache.get(conn_id)
    if hit is not None and hit[0] > time.monotonic():
        value: T = hit[1]
        return value
    value = await single_flight(("connection", conn_id), read)
    cache[conn_id] = (time.monotonic() + CONNECTION_TTL_S, value)
    return value


async def aclose_clients() -> None:
    """Close the running loop's cached async clients (tests; a triggerer keeps them for its life)."""
    _connections.pop(asyncio.get_running_loop(), None)
    clients = _async_clients.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.close()


__all__ = [
    "CONNECTION_TTL_S",
    "SDK_MODULES",
    "aclose_clients",
    "aimport_sdk",
    "async_client",
    "awarm",
    "shared_connection",
    "sync_client",
    "warm_sdk",
]
