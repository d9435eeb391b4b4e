"""
Store operations for the budget engine (see base.Store).

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

:class:`BudgetStore` is what callers use: it checks every argument once (``stores.checks``) and
hands the checked values to the store's :class:`BudgetBackend` (SQLite, Redis).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from airflow_agent_provider.stores import checks
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
    #: ``realtime`` or ``batch`` (a provider batch API, charged at its batch price).
    delivery: str = "realtime"


class BudgetBackend(ABC):
    """
    The budget operations one backend implements; every argument arrives checked.

    ``scopes`` of ``reserve`` are distinct ``(scope, limit)`` pairs, ``limit`` a number >= 0 or
    ``inf``; amounts are finite USD >= 0. The async twins default to the sync operation on the
    stores' thread pool; a backend with an asyncio client overrides them.
    """

    @abstractmethod
    def reserve(
        self, reservation_id: str, scopes: tuple[tuple[str, float], ...], amount: float, ttl_s: float
    ) -> ReserveResult:
        """See :meth:`BudgetStore.budget_reserve`."""

    @abstractmethod
    def settle(
        self,
        reservation_id: str,
        actual: float | None,
        ledger_entries: tuple[LedgerEntry, ...],
        scopes: tuple[str, ...],
    ) -> bool:
        """See :meth:`BudgetStore.budget_settle`."""

    @abstractmethod
    def release(self, reservation_id: str) -> bool:
        """See :meth:`BudgetStore.budget_release`."""

    @abstractmethod
    def totals(self, scope: str) -> ScopeTotals:
        """See :meth:`BudgetStore.budget_totals`."""

    @abstractmethod
    def ledger_entries(self, dag_id: str, run_id: str) -> list[LedgerEntry]:
        """See :meth:`BudgetStore.ledger_entries`."""

    async def areserve(
        self, reservation_id: str, scopes: tuple[tuple[str, float], ...], amount: float, ttl_s: float
    ) -> ReserveResult:
        """Async :meth:`reserve`."""
        return await run_blocking(self.reserve, reservation_id, scopes, amount, ttl_s)

    async def asettle(
        self,
        reservation_id: str,
        actual: float | None,
        ledger_entries: tuple[LedgerEntry, ...],
        scopes: tuple[str, ...],
    ) -> bool:
        """Async :meth:`settle`."""
        return await run_blocking(self.settle, reservation_id, actual, ledger_entries, scopes)

    async def arelease(self, reservation_id: str) -> bool:
        """Async :meth:`release`."""
        return await run_blocking(self.release, reservation_id)

    async def atotals(self, scope: str) -> ScopeTotals:
        """Async :meth:`totals`."""
        return await run_blocking(self.totals, scope)

    async def aledger_entries(self, dag_id: str, run_id: str) -> list[LedgerEntry]:
        """Async :meth:`ledger_entries`."""
        return await run_blocking(self.ledger_entries, dag_id, run_id)


# -- the argument contract ------------------------------------------------------------------------


def _check_reserve(
    reservation_id: str, scopes: Sequence[tuple[str, float]], amount: float, ttl_s: float
) -> tuple[str, tuple[tuple[str, float], ...], float, float]:
    checks.text("reservation_id", reservation_id)
    pairs: list[tuple[str, float]] = []
    for pair in checks.sequence("scopes", scopes):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"scopes must hold (scope, limit) pairs, got {pair!r}")
        scope, limit = pair
        pairs.append((checks.text("scope", scope), checks.limit(f"limit of {scope!r}", limit)))
    checks.distinct("scopes", [scope for scope, _ in pairs])
    return (
        reservation_id,
        tuple(pairs),
        checks.at_least("amount", amount, 0),
        checks.at_least("ttl_s", ttl_s, 0),
    )


def _check_entry(entry: object) -> LedgerEntry:
    if not isinstance(entry, LedgerEntry):
        raise TypeError(f"ledger_entries must hold LedgerEntry objects, got {type(entry).__name__}")
    for name in ("entry_id", "dag_id", "run_id"):
        checks.text(f"ledger entry {name}", getattr(entry, name))
    for name in ("module", "agent", "model", "provider", "price_source"):
        if not isinstance(getattr(entry, name), str):
            raise TypeError(
                f"ledger entry {name} must be a string, got {type(getattr(entry, name)).__name__}"
            )
    for name in ("input_tokens", "output_tokens", "cached_input_tokens"):
        checks.whole(f"ledger entry {name}", getattr(entry, name), minimum=0)
    if entry.usd is not None:
        checks.at_least("ledger entry usd", entry.usd, 0)
    checks.optional_number("ledger entry ts", entry.ts)
    checks.optional_text("ledger entry reservation_id", entry.reservation_id)
    return entry


def _check_settle(
    reservation_id: str, actual: float | None, ledger_entries: Sequence[LedgerEntry], scopes: Sequence[str]
) -> tuple[str, float | None, tuple[LedgerEntry, ...], tuple[str, ...]]:
    checks.text("reservation_id", reservation_id)
    entries = tuple(_check_entry(e) for e in checks.sequence("ledger_entries", ledger_entries))
    names = tuple(checks.text("scope", s) for s in checks.sequence("scopes", scopes))
    checks.distinct("scopes", names)
    return (
        reservation_id,
        None if actual is None else checks.at_least("actual", actual, 0),
        entries,
        names,
    )


def _check_run(dag_id: str, run_id: str) -> None:
    checks.text("dag_id", dag_id)
    checks.text("run_id", run_id)


class BudgetStore:
    """
    Budget reservations, spend per scope and the per-call ledger; every write is atomic.

    The public side of the budget store: each method checks its arguments (the same contract on
    every backend) and delegates to the store's :class:`BudgetBackend`. Async twins (``a`` prefix)
    serve the triggerer's event loop and are checked the same way.
    """

    #: Set by the concrete store (``Store.__init__``).
    _budget: BudgetBackend

    def budget_reserve(
        self, reservation_id: str, scopes: Sequence[tuple[str, float]], amount: float, ttl_s: float
    ) -> ReserveResult:
        """
        Take ``amount`` USD against every ``(scope, limit)`` at once, or against none.

        Refused when ``spent + live reserved + amount > limit`` for any scope with a finite limit;
        a scope with ``limit=inf`` is tracked but never refuses. Idempotent per ``reservation_id``
        while the reservation is live or settled; an expired or released id may reserve again.
        """
        return self._budget.reserve(*_check_reserve(reservation_id, scopes, amount, ttl_s))

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
        return self._budget.settle(*_check_settle(reservation_id, actual, ledger_entries, scopes))

    def budget_release(self, reservation_id: str) -> bool:
        """Drop a live reservation without charging; False when it was not live."""
        return self._budget.release(checks.text("reservation_id", reservation_id))

    def budget_spent(self, scope: str) -> float:
        """Settled USD of a scope."""
        return self.budget_totals(scope).spent

    def budget_reserved(self, scope: str) -> float:
        """USD held by live (unexpired, unsettled) reservations of a scope."""
        return self.budget_totals(scope).reserved

    def budget_totals(self, scope: str) -> ScopeTotals:
        """Spent, reserved and settled call count of a scope, read together."""
        return self._budget.totals(checks.text("scope", scope))

    def ledger_entries(self, dag_id: str, run_id: str) -> list[LedgerEntry]:
        """Every ledger entry of one DAG run, oldest first."""
        _check_run(dag_id, run_id)
        return self._budget.ledger_entries(dag_id, run_id)

    # -- async twins (same contract, same checks) -------------------------------------------------

    async def abudget_reserve(
        self, reservation_id: str, scopes: Sequence[tuple[str, float]], amount: float, ttl_s: float
    ) -> ReserveResult:
        """Async :meth:`budget_reserve`."""
        return await self._budget.areserve(*_check_reserve(reservation_id, scopes, amount, ttl_s))

    async def abudget_settle(
        self,
        reservation_id: str,
        actual: float | None,
        ledger_entries: Sequence[LedgerEntry] = (),
        *,
        scopes: Sequence[str] = (),
    ) -> bool:
        """Async :meth:`budget_settle`."""
        return await self._budget.asettle(*_check_settle(reservation_id, actual, ledger_entries, scopes))

    async def abudget_release(self, reservation_id: str) -> bool:
        """Async :meth:`budget_release`."""
        return await self._budget.arelease(checks.text("reservation_id", reservation_id))

    async def abudget_totals(self, scope: str) -> ScopeTotals:
        """Async :meth:`budget_totals`."""
        return await self._budget.atotals(checks.text("scope", scope))

    async def aledger_entries(self, dag_id: str, run_id: str) -> list[LedgerEntry]:
        """Async :meth:`ledger_entries`."""
        _check_run(dag_id, run_id)
        return await self._budget.aledger_entries(dag_id, run_id)
