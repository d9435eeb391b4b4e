"""Connection plumbing shared by the Redis store's mixins.

Why Redis: it is what several Airflow workers on several machines can share. Every check-and-take is
one Lua script (``EVALSHA``), so it is atomic on the server and costs one round trip.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from airflow_agent_provider.stores.base import StoreUnavailable


class RedisConnection:
    kind = "redis"

    def __init__(self, client: redis.Redis | str, *, prefix: str = "aap:") -> None:
        self._redis: redis.Redis = redis.Redis.from_url(client) if isinstance(client, str) else client
        self.prefix = prefix
        self._scripts: dict[str, Any] = {}

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

    def _server_time(self) -> float:
        """Server time, so that every worker measures windows by the same clock."""
        sec, usec = self._redis.time()
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

    def close(self) -> None:
        self._redis.close()
