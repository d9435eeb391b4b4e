"""
Abstract store operations for the budget engine (see base.Store).

Why reservations: a call's price is known only after it returns, but many workers spend against
the same budget at once. Each call first *reserves* its maximum cost against every scope it
belongs to (agent, module, run, day, month) in one atomic step; the reservation counts against
the budget until it is *settled* at the real cost, *released* (the call never happened) or it
*expires* (its worker died). Refusing when ``spent + live reservations + amount > limit`` is what
makes a budget never overshot, whatever the concurrency.

Amounts cross this interface as USD floats, but stores keep whole nano-dollars (1e-9 USD):
integer sums are exact on both backends, so a refusal is decided the same way everywhere. A
reserved amount is rounded up and a limit down, which can only err on the safe side.

The methods carry a ``budget_`` prefix because one store object also implements the rate-limit
and breaker interfaces, whose ``settle``/``release`` mean something else.

A reservation id names one logical call. Reserving again with the same id does not reserve twice
and settling it again does not charge twice: that is how a retried task never pays twice.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from airflow_agent_provider.stores.offload import run_blocking

#: Nano-dollars per dollar: the unit every store keeps.
NANO = 1_000_000_000

#: How long a settled or released reservation is remembered, so that a late retry stays idempotent.
RESERVATION_RETENTION_S = 7 * 24 * 3600.0

UNLIMITED = math.inf


def to_nano_up(usd: float) -> int:
    """A reserved amount in nano-dollars, rounded up (never reserve less than asked)."""
    return max(0, math.ceil(round(usd * NANO, 3)))


def to_nano(usd: float) -> int:
    """A real cost in nano-dollars, rounded to nearest."""
    return max(0, round(usd * NANO))


def limit_to_nano(limit: float) -> int:
    """A limit in nano-dollars, rounded down; -1 means unlimited (tracked, never refused)."""
    if limit is None or math.isinf(limit):
        return -1
    return max(0, math.floor(round(limit * NANO, 3)))


def from_nano(nano: float) -> float:
    return int(nano) / NANO


@dataclass(frozen=True)
class ReserveResult:
    """
    The outcome of ``budget_reserve``.

    Refused: ``spent``/``reserved``/``limit`` are the refused scope's values at that moment, before
    the amount (so ``spent + reserved + amount > limit`` holds). Granted: the values of the scope
    with the least room left, including this reservation; ``limit`` is ``inf`` when no scope has one.
    ``duplicate`` is True when the id was already reserved or settled and nothing new was taken.
    """

    granted: bool
    refused_scope: str | None
    spent: float
    reserved: float
    limit: float
    duplicate: bool = False


@dataclass(frozen=True)
class ScopeTotals:
    """Spend of one scope: settled USD, live reservations and the number of settled calls."""

    spent: float
    reserved: float
    calls: int


@dataclass
class LedgerEntry:
    """
    One charged call, as kept in the ledger.

    ``usd`` is None when the model's price is unknown (recorded, never counted as zero);
    ``ts`` (epoch seconds) is filled by the store's clock when None.
    """

    entry_id: str
    dag_id: str
    run_id: str
    module: str
    agent: str
    model: str
    provider: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    usd: float | None = None
    price_source: str = "unknown"
    ts: float | None = None
    reservation_id: str | None = None


class BudgetStore(ABC):
    """
    Budget reservations, spend per scope and the per-call ledger; every write is atomic.

    Async twins (``a`` prefix) serve the triggerer's event loop: by default the sync operation on
    the stores' thread pool (the SQLite store), natively async in the Redis store.
    """

    @abstractmethod
    def budget_reserve(
        self, reservation_id: str, scopes: Sequence[tuple[str, float]], amount: float, ttl_s: float
    ) -> ReserveResult:
        """
        Take ``amount`` USD against every ``(scope, limit)`` at once, or against none.

        Refused when ``spent + live reserved + amount > limit`` for any scope with a finite limit;
        a scope with ``limit=inf`` is tracked but never refuses. Idempotent per ``reservation_id``
        while the reservation is live or settled; an expired or released id may reserve again.
        """

    @abstractmethod
    def budget_settle(
        self,
        reservation_id: str,
        actual: float | None,
        ledger_entries: Sequence[LedgerEntry] = (),
        *,
        scopes: Sequence[str] = (),
    ) -> bool:
        """
        Turn the reservation into spend at the real cost and write the ledger entries.

        ``actual`` may be below the reservation (the rest is freed) or above it (the truth is
        recorded); None records an unknown cost (ledger only). A reservation that expired or was
        released is still charged, since the call did happen. ``scopes`` is used only when the id
        was never reserved (a charge without reservation). Returns False, charging nothing, when
        the id was already settled.
        """

    @abstractmethod
    def budget_release(self, reservation_id: str) -> bool:
        """Drop a live reservation without charging; False when it was not live."""

    @abstractmethod
    def budget_spent(self, scope: str) -> float:
        """Settled USD of a scope."""

    @abstractmethod
    def budget_reserved(self, scope: str) -> float:
        """USD held by live (unexpired, unsettled) reservations of a scope."""

    @abstractmethod
    def budget_totals(self, scope: str) -> ScopeTotals:
        """Spent, reserved and settled call count of a scope, read together."""

    @abstractmethod
    def ledger_entries(self, dag_id: str, run_id: str) -> list[LedgerEntry]:
        """Every ledger entry of one DAG run, oldest first."""

    # -- async twins (same contract; see the class docstring) ------------------------------------

    async def abudget_reserve(
        self, reservation_id: str, scopes: Sequence[tuple[str, float]], amount: float, ttl_s: float
    ) -> ReserveResult:
        """Async :meth:`budget_reserve`."""
        return await run_blocking(self.budget_reserve, reservation_id, scopes, amount, ttl_s)

    async def abudget_settle(
        self,
        reservation_id: str,
        actual: float | None,
        ledger_entries: Sequence[LedgerEntry] = (),
        *,
        scopes: Sequence[str] = (),
    ) -> bool:
        """Async :meth:`budget_settle`."""
        return await run_blocking(self.budget_settle, reservation_id, actual, ledger_entries, scopes=scopes)

    async def abudget_release(self, reservation_id: str) -> bool:
        """Async :meth:`budget_release`."""
        return await run_blocking(self.budget_release, reservation_id)

    async def abudget_totals(self, scope: str) -> ScopeTotals:
        """Async :meth:`budget_totals`."""
        return await run_blocking(self.budget_totals, scope)

    async def aledger_entries(self, dag_id: str, run_id: str) -> list[LedgerEntry]:
        """Async :meth:`ledger_entries`."""
        return await run_blocking(self.ledger_entries, dag_id, run_id)
