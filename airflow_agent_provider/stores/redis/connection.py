"""
The Redis store's connection: the clients, the script registry and the key layout, in one object.

Why Redis: it is what several Airflow workers on several machines can share. Every check-and-take is
one Lua script (``EVALSHA``), so it is atomic on the server and costs one round trip.

Two clients share each script's one source text: the sync client (workers) and redis-py's asyncio
client (triggers, the ``a``-prefixed operations). An asyncio client and its connection pool are
bound to the event loop that opened them, so the connection keeps one per running loop, created on
first use and reused by every trigger on that loop: a triggerer with 500 triggers opens a pool, not
500 connections.

Every concern of the store (limits, budget, breaker, runs) receives this one object and uses only
its public methods: ``run``/``arun`` for a script, ``call``/``acall`` for a plain command, ``keys``
for key names. Each of them turns "cannot reach Redis" into ``StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aredis

from airflow_agent_provider.exceptions import StoreUnavailable
from airflow_agent_provider.stores.redis.keys import KeyLayout

if TYPE_CHECKING:
    from redis.asyncio.connection import AbstractConnection
    from redis.commands.core import AsyncScript, Script

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
_ASYNC_CLASSES: dict[str, type[AbstractConnection]] = {
    "Connection": aredis.Connection,
    "SSLConnection": aredis.SSLConnection,
    "UnixDomainSocketConnection": aredis.UnixDomainSocketConnection,
}


#: What a script receives in ``ARGV`` (redis-py encodes each as a string).
ScriptArg = str | int | float


@dataclass(frozen=True)
class LuaScript:
    """One Lua script: ``name`` keys the registry (one registration per client), ``source`` is run."""

    name: str
    source: str


class _LoopState:
    """The asyncio client of one event loop and the scripts registered on it."""

    def __init__(self, client: aredis.Redis) -> None:
        self.client = client
        self.scripts: dict[str, AsyncScript] = {}


class RedisConnection:
    """The sync client, one asyncio client per event loop, the registered scripts and the key prefix."""

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
        :param prefix: put before every key, so that several deployments can share one server.
        :param url: the client's URL, when known: the asyncio client is opened from it. Without it
            the asyncio client copies the sync client's connection settings.
        :param client_options: extra options for clients opened from ``url`` (timeouts).
        """
        self._client_options = dict(client_options or {})
        if isinstance(client, str):
            url = url or client
            client = redis.Redis.from_url(client, **self._client_options)
        #: The sync client (workers). Replaceable: scripts register on the client of the moment.
        self.client: redis.Redis = client
        self.keys = KeyLayout(prefix)
        #: The URL the clients were opened from, when known (the asyncio clients are opened from it).
        self.url = url
        self._scripts: dict[str, tuple[redis.Redis, Script]] = {}
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._loops_lock = threading.Lock()

    @property
    def prefix(self) -> str:
        return self.keys.prefix

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn "cannot reach Redis" into ``StoreUnavailable`` so engines handle both stores alike."""
        try:
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as err:
            raise StoreUnavailable(f"redis store unreachable: {err}") from err

    # -- sync side ---------------------------------------------------------------------------------

    def run(self, script: LuaScript, keys: Sequence[str] = (), args: Sequence[ScriptArg] = ()) -> Any:
        """Run ``script`` (EVALSHA, loaded again automatically after a server restart); its raw reply."""
        entry = self._scripts.get(script.name)
        if entry is None or entry[0] is not self.client:
            entry = self._scripts[script.name] = (self.client, self.client.register_script(script.source))
        with self.guard():
            return entry[1](keys=list(keys), args=list(args))

    def call(self, command: Callable[[redis.Redis], Any]) -> Any:
        """``command(client)``: one plain command (or pipeline) on the sync client; its reply."""
        with self.guard():
            return command(self.client)

    def server_time(self) -> float:
        """Server time, so that every worker measures windows by the same clock."""
        sec, usec = self.call(lambda c: c.time())
        return float(sec + usec / 1_000_000)

    def ping(self) -> None:
        self.call(lambda c: c.ping())

    def close(self) -> None:
        self.client.close()

    # -- asyncio side ------------------------------------------------------------------------------

    def _new_async_client(self) -> aredis.Redis:
        if self.url is not None:
            return aredis.Redis.from_url(self.url, **self._client_options)
        pool = self.client.connection_pool
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

    def aclient(self) -> aredis.Redis:
        """The asyncio client of the running event loop (one per loop, reused)."""
        return self._loop_state().client

    async def arun(self, script: LuaScript, keys: Sequence[str] = (), args: Sequence[ScriptArg] = ()) -> Any:
        """The async twin of :meth:`run`: the same Lua source, run by this loop's asyncio client."""
        state = self._loop_state()
        registered = state.scripts.get(script.name)
        if registered is None:
            registered = state.scripts[script.name] = state.client.register_script(script.source)
        with self.guard():
            return await registered(keys=list(keys), args=list(args))

    async def acall(self, command: Callable[[aredis.Redis], Awaitable[Any] | Any]) -> Any:
        """
        ``await command(client)`` on this loop's asyncio client; its reply.

        redis-py types the asyncio client's commands with the sync client's "reply or awaitable"
        union, hence the check rather than a plain ``await``.
        """
        with self.guard():
            reply = command(self.aclient())
            return await reply if inspect.isawaitable(reply) else reply

    async def aserver_time(self) -> float:
        sec, usec = await self.acall(lambda c: c.time())
        return float(sec + usec / 1_000_000)

    async def aping(self) -> None:
        await self.acall(lambda c: c.ping())

    async def aclose(self) -> None:
        """Close the running loop's asyncio client and its pool (a later async call opens a new one)."""
        loop = asyncio.get_running_loop()
        with self._loops_lock:
            state = self._loops.pop(loop, None)
        if state is not None:
            await state.client.aclose()
