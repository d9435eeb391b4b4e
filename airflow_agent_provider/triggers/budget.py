"""
CostBudgetTrigger: waits in the triggerer until a budget scope has room.

It frees the worker slot while a deferrable ``CostBudgetSensor`` waits (for reservations to be
released, or for the next UTC day or month). The store calls are blocking, so each check runs in a
thread (``asyncio.to_thread``) and the triggerer's event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_agent_provider.cost.check import BudgetCheck, check_budget, scope_key
from airflow_agent_provider.hooks.store import get_store
from airflow_agent_provider.stores.config import store_from_url
from airflow_agent_provider.triggers._events import trigger_event

if TYPE_CHECKING:
    from airflow_agent_provider.stores.base import Store


@contextmanager
def budget_store(store_url: str | None = None) -> Iterator[Store]:
    """
    The shared store: ``store_url`` when given, else the provider's configured store (``get_store``).

    A store opened here from a URL is closed afterwards; the process-wide one of the store hook is
    shared with every operator and trigger of the process and is left open.
    """
    if store_url is None:
        yield get_store()
        return
    store = store_from_url(store_url)
    try:
        yield store
    finally:
        store.close()


def run_check(
    scope: str,
    dag_id: str,
    run_id: str | None,
    module: str | None,
    period: str | None,
    max_spend_usd: float,
    required_usd: float | None,
    include_reserved: bool,
    store_url: str | None,
) -> BudgetCheck:
    """One blocking check against the store; shared by the sensor and the trigger."""
    key = scope_key(scope, dag_id, run_id, module, period)
    with budget_store(store_url) as store:
        return check_budget(store, key, max_spend_usd, required_usd, include_reserved)


class CostBudgetTrigger(BaseTrigger):
    """
    Fires ``{"status": "success", "check": {...}}`` once the scope has room, or
    ``{"status": "timeout", ...}`` when ``timeout_s`` has passed first.
    """

    def __init__(
        self,
        *,
        scope: str,
        dag_id: str,
        run_id: str | None,
        module: str | None,
        period: str | None,
        max_spend_usd: float,
        required_usd: float | None = None,
        include_reserved: bool = True,
        poke_interval: float = 60.0,
        timeout_s: float | None = None,
        store_url: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger.__init__ is unannotated
        self.scope = scope
        self.dag_id = dag_id
        self.run_id = run_id
        self.module = module
        self.period = period
        self.max_spend_usd = max_spend_usd
        self.required_usd = required_usd
        self.include_reserved = include_reserved
        self.poke_interval = poke_interval
        self.timeout_s = timeout_s
        self.store_url = store_url

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "scope": self.scope,
                "dag_id": self.dag_id,
                "run_id": self.run_id,
                "module": self.module,
                "period": self.period,
                "max_spend_usd": self.max_spend_usd,
                "required_usd": self.required_usd,
                "include_reserved": self.include_reserved,
                "poke_interval": self.poke_interval,
                "timeout_s": self.timeout_s,
                "store_url": self.store_url,
            },
        )

    def _check(self) -> BudgetCheck:
        return run_check(
            self.scope,
            self.dag_id,
            self.run_id,
            self.module,
            self.period,
            self.max_spend_usd,
            self.required_usd,
            self.include_reserved,
            self.store_url,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        while True:
            try:
                check = await asyncio.to_thread(self._check)
            except Exception as exc:
                yield trigger_event({"status": "error", "message": f"{type(exc).__name__}: {exc}"})
                return
            if check.ok:
                yield trigger_event({"status": "success", "check": check.to_dict()})
                return
            self.log.info("%s", check.message)
            if deadline is not None and time.monotonic() >= deadline:
                yield trigger_event({"status": "timeout", "check": check.to_dict()})
                return
            delay = self.poke_interval
            if deadline is not None:
                delay = max(0.0, min(delay, deadline - time.monotonic()))
            await asyncio.sleep(delay)
