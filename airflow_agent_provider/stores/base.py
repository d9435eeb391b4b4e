"""
The store interface shared by the limits, cost and resilience engines.

One store holds everything that must be shared by every worker and triggerer: rate-limit windows
and leases, budget reservations and the spend ledger, circuit-breaker state, the run index. Each
concern has a module of its own (``*_api.py``) with two classes: the public front (``RateLimitStore``,
``BudgetStore``, ``BreakerStore``, ``RunIndexStore``), which checks every argument once, and the
backend interface (``LimitsBackend``, ...) that receives the checked values. A concrete store
(SQLite, Redis) is composed, not inherited: it opens one small connection object and hands it to one
backend object per concern; :class:`Store` routes each public call to the concern's backend. No
concern reaches into another's private methods: what two concerns share (the Redis key layout, the
SQLite schema) lives in a module of its own.

Every method that checks and then takes must be atomic across processes: the SQLite store runs it
in one ``BEGIN IMMEDIATE`` transaction, the Redis store in one Lua script.

Every operation has an async twin with an ``a`` prefix (``aacquire``, ``abudget_reserve``,
``abreaker_allow``...) for triggers, which must never block the triggerer's event loop: the Redis
store runs the very same Lua scripts through redis-py's asyncio client (one client and connection
pool per event loop), the SQLite store runs its sync operation on a small thread pool of its own
(``stores.offload``). The sync API is what workers use, unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from airflow_agent_provider.exceptions import StoreUnavailable as StoreUnavailable
from airflow_agent_provider.stores.breaker_api import BreakerBackend, BreakerStore
from airflow_agent_provider.stores.budget_api import BudgetBackend, BudgetStore
from airflow_agent_provider.stores.limits_api import LimitsBackend, RateLimitStore
from airflow_agent_provider.stores.offload import run_blocking
from airflow_agent_provider.stores.runs_api import RunIndexStore, RunsBackend


class Store(RateLimitStore, BudgetStore, BreakerStore, RunIndexStore, ABC):
    """
    A complete store: what the engines receive.

    The public methods come from the four fronts; a concrete store passes one backend per concern
    and implements the connection's life cycle (``ping``, ``close``).
    """

    #: Short name for logs and metrics ("sqlite", "redis").
    kind: str = "abstract"

    def __init__(
        self, *, limits: LimitsBackend, budget: BudgetBackend, breaker: BreakerBackend, runs: RunsBackend
    ) -> None:
        self._limits = limits
        self._budget = budget
        self._breaker = breaker
        self._runs = runs

    @abstractmethod
    def ping(self) -> None:
        """Raise ``StoreUnavailable`` when the backend cannot be reached."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. The store must not be used afterwards."""

    async def aping(self) -> None:
        """Async :meth:`ping`."""
        await run_blocking(self.ping)

    async def aclose(self) -> None:
        """Release what the async twins opened for the running event loop (the sync side stays usable)."""
