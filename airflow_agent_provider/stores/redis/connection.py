"""
Connection plumbing shared by the Redis store's mixins.

Why Redis: it is what several Airflow workers on several machines can share. Every check-and-take is
one Lua script (``EVALSHA``), so it is atomic on the server and costs one round trip.

Two clients share each script's one source text: the sync client (workers) and redis-py's asyncio
client (triggers, the ``a``-prefixed operations). An asyncio client and its connection pool are
bound to the event loop that opened them, so the store keeps one per running loop, created on first
use and reused by every trigger on that loop: a triggerer with 500 triggers opens a pool, not 500
connections.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
import redis.asyncio as aredis

from airflow_agent_provider.stores.base import StoreUnavailable

# Connection settings that mean the same to the sync and the asyncio connection classes.
_SHARED_KWARGS = (
    "host",
    "port",
    "path",
    "db",
    "username",
    "password",
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
    "socket_keepalive_options",
    "encoding",
    "encoding_errors",
    "decode_responses",
    "health_check_interval",
    "client_name",
    "credential_provider",
    "protocol",
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_check_hostname",
    "ssl_min_version",
    "ssl_ciphers",
)
_ASYNC_CLASSES = {
    "Connection": aredis.Connection,
    "SSLConnection": aredis.SSLConnection,
    "UnixDomainSocketConnection": aredis.UnixDomainSocketConnection,
}


class _LoopState:
    """The asyncio client of one event loop and the scripts registered on it."""

    def __init__(self, client: aredis.Redis) -> None:
        self.client = client
        self.scripts: dict[str, Any] = {}


class RedisConnection:
    kind = "redis"

    def __init__(
        self,
        client: redis.Redis | str,
        *,
        prefix: str = "aap:",
        url: str | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        """
        :param client: a sync client, or a URL to open one from.
        :param url: the client's URL, when known: the asyncio client is opened from it. Without it
            the asyncio client copies the sync client's connection settings.
        :param client_options: extra options for clients opened from ``url`` (timeouts).
        """
        self._client_options = dict(client_options or {})
        if isinstance(client, str):
            url = url or client
            client = redis.Redis.from_url(client, **self._client_options)
        self._redis: redis.Redis = client
        self._url = url
        self.prefix = prefix
        self._scripts: dict[str, Any] = {}
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._loops_lock = threading.Lock()

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _script(self, name: str, lua: str):
        """Register a Lua script once per store; calling it uses EVALSHA with an automatic reload."""
        script = self._scripts.get(name)
        if script is None:
            registered = self._redis.register_script(lua)

            def script(*args: Any, **kwargs: Any) -> Any:
                # Every store operation is a script: guarding here covers all of them at once.
                with self._guard():
                    return registered(*args, **kwargs)

            script = self._scripts[name] = script
        return script

    # -- asyncio side ------------------------------------------------------------------------------

    def _new_async_client(self) -> aredis.Redis:
        if self._url is not None:
            return aredis.Redis.from_url(self._url, **self._client_options)
        pool = self._redis.connection_pool
        kwargs = {k: v for k, v in pool.connection_kwargs.items() if k in _SHARED_KWARGS}
        connection_class = _ASYNC_CLASSES.get(pool.connection_class.__name__, aredis.Connection)
        return aredis.Redis(
            connection_pool=aredis.ConnectionPool(connection_class=connection_class, **kwargs)
        )

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            with self._loops_lock:
                state = self._loops.get(loop)
                if state is None:
                    state = self._loops[loop] = _LoopState(self._new_async_client())
        return state

    def _aclient(self) -> aredis.Redis:
        """The asyncio client of the running event loop (one per loop, reused)."""
        return self._loop_state().client

    def _ascript(self, name: str, lua: str):
        """The async twin of :meth:`_script`: the same Lua source, run by this loop's asyncio client."""
        state = self._loop_state()
        script = state.scripts.get(name)
        if script is None:
            registered = state.client.register_script(lua)

            async def script(*args: Any, **kwargs: Any) -> Any:
                with self._guard():
                    return await registered(*args, **kwargs)

            script = state.scripts[name] = script
        return script

    def _server_time(self) -> float:
        """Server time, so that every worker measures windows by the same clock."""
        sec, usec = self._redis.time()
        return sec + usec / 1_000_000

    async def _aserver_time(self) -> float:
        with self._guard():
            sec, usec = await self._aclient().time()
        return sec + usec / 1_000_000

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn "cannot reach Redis" into ``StoreUnavailable`` so engines handle both stores alike."""
        try:
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as err:
            raise StoreUnavailable(f"redis store unreachable: {err}") from err

    def ping(self) -> None:
        with self._guard():
            self._redis.ping()

    async def aping(self) -> None:
        with self._guard():
            await self._aclient().ping()

    async def aclose(self) -> None:
        """Close the running loop's asyncio client and its pool (a later async call opens a new one)."""
        loop = asyncio.get_running_loop()
        with self._loops_lock:
            state = self._loops.pop(loop, None)
        if state is not None:
            await state.client.aclose()

    def close(self) -> None:
        self._redis.close()
