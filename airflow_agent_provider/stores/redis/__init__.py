"""
The Redis store: shared by every worker and triggerer in a distributed deployment.

``RedisStore`` is a facade: it opens one :class:`RedisConnection` (clients, scripts, key prefix) and
composes one backend per concern around it (``limits``, ``budget``, ``breaker``, ``runs``); the
public methods, with their argument checks, come from :class:`~airflow_agent_provider.stores.base.Store`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_agent_provider.stores.base import Store
from airflow_agent_provider.stores.redis.breaker import RedisBreaker
from airflow_agent_provider.stores.redis.budget import RedisBudget
from airflow_agent_provider.stores.redis.connection import RedisConnection
from airflow_agent_provider.stores.redis.limits import RedisLimits
from airflow_agent_provider.stores.redis.runs import RedisRuns

if TYPE_CHECKING:
    import redis


class RedisStore(Store):
    """Redis server shared by every process of a deployment."""

    kind = "redis"

    def __init__(
        self,
        client: redis.Redis | str,
        *,
        prefix: str = "aap:",
        url: str | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        """See :class:`RedisConnection` for the parameters."""
        self.connection = RedisConnection(client, prefix=prefix, url=url, client_options=client_options)
        super().__init__(
            limits=RedisLimits(self.connection),
            budget=RedisBudget(self.connection),
            breaker=RedisBreaker(self.connection),
            runs=RedisRuns(self.connection),
        )

    @property
    def prefix(self) -> str:
        """What every key of this store starts with (``aap:`` unless the URL says ``?prefix=``)."""
        return self.connection.prefix

    def ping(self) -> None:
        self.connection.ping()

    async def aping(self) -> None:
        await self.connection.aping()

    def close(self) -> None:
        self.connection.close()

    async def aclose(self) -> None:
        await self.connection.aclose()


__all__ = ["RedisConnection", "RedisStore"]
