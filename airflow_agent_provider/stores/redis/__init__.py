"""The Redis store: shared by every worker and triggerer in a distributed deployment."""

from __future__ import annotations

from airflow_agent_provider.stores.base import Store
from airflow_agent_provider.stores.redis.breaker import RedisBreakerMixin
from airflow_agent_provider.stores.redis.budget import RedisBudgetMixin
from airflow_agent_provider.stores.redis.connection import RedisConnection
from airflow_agent_provider.stores.redis.limits import RedisLimitsMixin
from airflow_agent_provider.stores.redis.runs import RedisRunsMixin


class RedisStore(
    RedisLimitsMixin, RedisBudgetMixin, RedisBreakerMixin, RedisRunsMixin, RedisConnection, Store
):
    """Redis server shared by every process of a deployment."""


__all__ = ["RedisStore"]
