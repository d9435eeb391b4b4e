"""Connection plumbing shared by the Redis store's mixins.

Why Redis: it is what several Airflow workers on several machines can share. Every check-and-take is
one Lua script (``EVALSHA``), so it is atomic on the server and costs one round trip.
"""

from __future__ import annotations

from typing import Any

import redis


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
            script = self._scripts[name] = self._redis.register_script(lua)
        return script

    def _server_time(self) -> float:
        """Server time, so that every worker measures windows by the same clock."""
        sec, usec = self._redis.time()
        return sec + usec / 1_000_000

    def ping(self) -> None:
        self._redis.ping()

    def close(self) -> None:
        self._redis.close()
