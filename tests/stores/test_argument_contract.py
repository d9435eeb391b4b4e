"""Both stores refuse the same bad arguments, with the same exception and the same message.

Every public store method that takes arguments is called with each bad value below, on a real SQLite
file and on the real redis-server, through the sync method and through its async twin. The checks
live once in the public fronts (``stores/*_api.py``), so the backends never see a bad value: an
unreachable Redis store raises the argument error too, not ``StoreUnavailable``, and the stores
hold nothing afterwards. Before the checks moved there, the two stores had drifted (SQLite stored
negative tokens that Redis refused).
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from airflow_agent_provider.stores import Tier, store_from_url
from airflow_agent_provider.stores.breaker_api import BreakerConfig
from airflow_agent_provider.stores.budget_api import LedgerEntry
from airflow_agent_provider.stores.runs_api import RunRecord
from tests.fixtures.redis_server import free_port

NAN = math.nan
INF = math.inf
RPW = Tier("rpw", 3, 10.0)
RUN = "run:d:r1"
CFG = BreakerConfig()
ENTRY = LedgerEntry("c1", "d", "r1", "M", "a", "gpt-5-mini", "openai", 100, 20, 0, 0.2, "genai-prices")
RECORD = RunRecord("d", "r1", "wf", "success", "success", 1.0, 2.0, 0.1)


@dataclass(frozen=True)
class Case:
    """One call with a bad argument and the error every store must raise for it."""

    method: str
    args: tuple[Any, ...]
    error: type[Exception]
    message: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: Whether the method has an async twin (``a`` + method).
    has_async: bool = True

    @property
    def id(self) -> str:
        return f"{self.method}:{self.message}"


def case(method, *args, error, message, has_async=True, **kwargs) -> Case:
    return Case(method, args, error, message, kwargs, has_async)


CASES = [
    # -- rate limits -------------------------------------------------------------------------------
    case("acquire", "", [RPW], error=ValueError, message="key must not be empty"),
    case("acquire", None, [RPW], error=TypeError, message="key must be a string, got NoneType"),
    case("acquire", "k", RPW, error=TypeError, message="tiers must be a list or tuple, got Tier"),
    case("acquire", "k", ["rpw"], error=TypeError, message="tiers must hold Tier objects, got str"),
    case("acquire", "k", [RPW], -1, error=ValueError, message="tokens must be >= 0, got -1"),
    case("acquire", "k", [RPW], 1.5, error=TypeError, message="tokens must be an integer, got float"),
    case("acquire", "k", [RPW], True, error=TypeError, message="tokens must be an integer, got bool"),
    case(
        "acquire",
        "k",
        [RPW],
        max_concurrent=0,
        error=ValueError,
        message="max_concurrent must be >= 1, got 0",
    ),
    case(
        "acquire",
        "k",
        [RPW],
        max_concurrent=2.0,
        error=TypeError,
        message="max_concurrent must be an integer, got float",
    ),
    case("acquire", "k", [], lease_ttl_s=0, error=ValueError, message="lease_ttl_s must be > 0, got 0"),
    case("acquire", "k", [], lease_ttl_s=-5.0, error=ValueError, message="lease_ttl_s must be > 0, got -5.0"),
    case(
        "acquire",
        "k",
        [],
        lease_ttl_s=NAN,
        error=ValueError,
        message="lease_ttl_s must be a finite number, got nan",
    ),
    case(
        "acquire",
        "k",
        [],
        lease_ttl_s="600",
        error=TypeError,
        message="lease_ttl_s must be a number, got str",
    ),
    case("acquire", "k", [RPW], now=INF, error=ValueError, message="now must be a finite number, got inf"),
    case("settle", "k", "g", -5, error=ValueError, message="actual_tokens must be >= 0, got -5"),
    case("settle", "k", "g", 5.0, error=TypeError, message="actual_tokens must be an integer, got float"),
    case("settle", "k", "", 5, error=ValueError, message="grant_id must not be empty"),
    case("settle", "", "g", 5, error=ValueError, message="key must not be empty"),
    case("release", "k", "", error=ValueError, message="grant_id must not be empty"),
    case("release", "k", None, error=TypeError, message="grant_id must be a string, got NoneType"),
    case("release", 7, "g", error=TypeError, message="key must be a string, got int"),
    case("penalize", "k", error=ValueError, message="penalize needs exactly one of until or delay_s"),
    case(
        "penalize",
        "k",
        1.0,
        delay_s=1.0,
        error=ValueError,
        message="penalize needs exactly one of until or delay_s",
    ),
    case("penalize", "k", delay_s=-1, error=ValueError, message="delay_s must be >= 0, got -1"),
    case("penalize", "k", delay_s=NAN, error=ValueError, message="delay_s must be a finite number, got nan"),
    case("penalize", "k", INF, error=ValueError, message="until must be a finite number, got inf"),
    case("penalize", "", delay_s=1.0, error=ValueError, message="key must not be empty"),
    case("paused_until", "", error=ValueError, message="key must not be empty"),
    case("paused_until", b"k", error=TypeError, message="key must be a string, got bytes"),
    # -- budget ------------------------------------------------------------------------------------
    case(
        "budget_reserve",
        "",
        [(RUN, 1.0)],
        0.1,
        60,
        error=ValueError,
        message="reservation_id must not be empty",
    ),
    case(
        "budget_reserve",
        "r",
        [(RUN, 1.0)],
        -0.1,
        60,
        error=ValueError,
        message="amount must be >= 0, got -0.1",
    ),
    case(
        "budget_reserve",
        "r",
        [(RUN, 1.0)],
        NAN,
        60,
        error=ValueError,
        message="amount must be a finite number, got nan",
    ),
    case(
        "budget_reserve",
        "r",
        [(RUN, 1.0)],
        INF,
        60,
        error=ValueError,
        message="amount must be a finite number, got inf",
    ),
    case(
        "budget_reserve",
        "r",
        [(RUN, 1.0)],
        None,
        60,
        error=TypeError,
        message="amount must be a number, got NoneType",
    ),
    case(
        "budget_reserve", "r", [(RUN, 1.0)], 0.1, -1, error=ValueError, message="ttl_s must be >= 0, got -1"
    ),
    case(
        "budget_reserve",
        "r",
        RUN,
        0.1,
        60,
        error=TypeError,
        message="scopes must be a list or tuple, got str",
    ),
    case(
        "budget_reserve",
        "r",
        [(RUN,)],
        0.1,
        60,
        error=TypeError,
        message="scopes must hold (scope, limit) pairs, got ('run:d:r1',)",
    ),
    case("budget_reserve", "r", [("", 1.0)], 0.1, 60, error=ValueError, message="scope must not be empty"),
    case(
        "budget_reserve",
        "r",
        [(RUN, -1.0)],
        0.1,
        60,
        error=ValueError,
        message="limit of 'run:d:r1' must be >= 0, got -1.0",
    ),
    case(
        "budget_reserve",
        "r",
        [(RUN, NAN)],
        0.1,
        60,
        error=ValueError,
        message="limit of 'run:d:r1' must be a finite number, got nan",
    ),
    case(
        "budget_reserve",
        "r",
        [(RUN, None)],
        0.1,
        60,
        error=TypeError,
        message="limit of 'run:d:r1' must be a number, got NoneType",
    ),
    case(
        "budget_reserve",
        "r",
        [(RUN, 1.0), (RUN, 2.0)],
        0.1,
        60,
        error=ValueError,
        message="scopes lists 'run:d:r1' twice",
    ),
    case("budget_settle", "", 0.1, error=ValueError, message="reservation_id must not be empty"),
    case("budget_settle", "r", -0.1, error=ValueError, message="actual must be >= 0, got -0.1"),
    case("budget_settle", "r", NAN, error=ValueError, message="actual must be a finite number, got nan"),
    case("budget_settle", "r", "0.1", error=TypeError, message="actual must be a number, got str"),
    case(
        "budget_settle",
        "r",
        0.1,
        ["entry"],
        error=TypeError,
        message="ledger_entries must hold LedgerEntry objects, got str",
    ),
    case(
        "budget_settle",
        "r",
        0.1,
        ENTRY,
        error=TypeError,
        message="ledger_entries must be a list or tuple, got LedgerEntry",
    ),
    case(
        "budget_settle",
        "r",
        0.1,
        [replace(ENTRY, usd=NAN)],
        error=ValueError,
        message="ledger entry usd must be a finite number, got nan",
    ),
    case(
        "budget_settle",
        "r",
        0.1,
        [replace(ENTRY, usd=-1.0)],
        error=ValueError,
        message="ledger entry usd must be >= 0, got -1.0",
    ),
    case(
        "budget_settle",
        "r",
        0.1,
        [replace(ENTRY, input_tokens=-1)],
        error=ValueError,
        message="ledger entry input_tokens must be >= 0, got -1",
    ),
    case(
        "budget_settle",
        "r",
        0.1,
        [replace(ENTRY, output_tokens=2.5)],
        error=TypeError,
        message="ledger entry output_tokens must be an integer, got float",
    ),
    case(
        "budget_settle",
        "r",
        0.1,
        [replace(ENTRY, dag_id="")],
        error=ValueError,
        message="ledger entry dag_id must not be empty",
    ),
    case(
        "budget_settle",
        "r",
        0.1,
        [replace(ENTRY, model=None)],
        error=TypeError,
        message="ledger entry model must be a string, got NoneType",
    ),
    case(
        "budget_settle",
        "r",
        0.1,
        [replace(ENTRY, ts=INF)],
        error=ValueError,
        message="ledger entry ts must be a finite number, got inf",
    ),
    case("budget_settle", "r", 0.1, scopes=[""], error=ValueError, message="scope must not be empty"),
    case(
        "budget_settle",
        "r",
        0.1,
        scopes=RUN,
        error=TypeError,
        message="scopes must be a list or tuple, got str",
    ),
    case(
        "budget_settle",
        "r",
        0.1,
        scopes=[RUN, RUN],
        error=ValueError,
        message="scopes lists 'run:d:r1' twice",
    ),
    case("budget_release", "", error=ValueError, message="reservation_id must not be empty"),
    case("budget_release", None, error=TypeError, message="reservation_id must be a string, got NoneType"),
    case("budget_totals", "", error=ValueError, message="scope must not be empty"),
    case("budget_totals", None, error=TypeError, message="scope must be a string, got NoneType"),
    case("budget_spent", "", error=ValueError, message="scope must not be empty", has_async=False),
    case("budget_reserved", "", error=ValueError, message="scope must not be empty", has_async=False),
    case("ledger_entries", "", "r1", error=ValueError, message="dag_id must not be empty"),
    case("ledger_entries", "d", "", error=ValueError, message="run_id must not be empty"),
    # -- circuit breaker ---------------------------------------------------------------------------
    case("breaker_allow", "", CFG, error=ValueError, message="key must not be empty"),
    case(
        "breaker_allow",
        "k",
        {"failure_threshold": 1},
        error=TypeError,
        message="cfg must be a BreakerConfig, got dict",
    ),
    case("breaker_record", "k", "yes", CFG, error=TypeError, message="success must be a bool, got str"),
    case("breaker_record", "k", 1, CFG, error=TypeError, message="success must be a bool, got int"),
    case(
        "breaker_record",
        "k",
        True,
        None,
        error=TypeError,
        message="cfg must be a BreakerConfig, got NoneType",
    ),
    case(
        "breaker_record", "k", True, CFG, trial_id="", error=ValueError, message="trial_id must not be empty"
    ),
    case("breaker_record", "", False, CFG, error=ValueError, message="key must not be empty"),
    case("breaker_release", "k", "", error=ValueError, message="trial_id must not be empty"),
    case("breaker_release", "k", None, error=TypeError, message="trial_id must be a string, got NoneType"),
    case("breaker_state", "", error=ValueError, message="key must not be empty"),
    case("breaker_reset", "", error=ValueError, message="key must not be empty"),
    # -- run index ---------------------------------------------------------------------------------
    case(
        "run_record",
        {"dag_id": "d"},
        error=TypeError,
        message="record must be a RunRecord, got dict",
        has_async=False,
    ),
    case(
        "run_record",
        replace(RECORD, dag_id=""),
        error=ValueError,
        message="record.dag_id must not be empty",
        has_async=False,
    ),
    case(
        "run_record",
        replace(RECORD, run_id=None),
        error=TypeError,
        message="record.run_id must be a string, got NoneType",
        has_async=False,
    ),
    case("run_get", "", "r1", error=ValueError, message="dag_id must not be empty", has_async=False),
    case(
        "run_get",
        "d",
        None,
        error=TypeError,
        message="run_id must be a string, got NoneType",
        has_async=False,
    ),
    case("runs_list", "", error=ValueError, message="dag_id must not be empty", has_async=False),
    case(
        "runs_list", limit="5", error=TypeError, message="limit must be an integer, got str", has_async=False
    ),
    case(
        "runs_list",
        limit=1.5,
        error=TypeError,
        message="limit must be an integer, got float",
        has_async=False,
    ),
    case("ledger_runs", "", error=ValueError, message="dag_id must not be empty", has_async=False),
    case(
        "ledger_runs",
        limit=None,
        error=TypeError,
        message="limit must be an integer, got NoneType",
        has_async=False,
    ),
    case("limit_usage", "", [RPW], error=ValueError, message="key must not be empty", has_async=False),
    case(
        "limit_usage",
        "k",
        "rpw",
        error=TypeError,
        message="tiers must be a list or tuple, got str",
        has_async=False,
    ),
]
ASYNC_CASES = [c for c in CASES if c.has_async]


def _call(store, c: Case, *, twin: bool = False) -> Exception:
    """Run the case (sync, or its async twin on a fresh loop); the exception it raised."""
    if twin:

        async def main():
            try:
                return await getattr(store, "a" + c.method)(*c.args, **c.kwargs)
            finally:
                await store.aclose()

        def run():
            return asyncio.run(main())
    else:

        def run():
            return getattr(store, c.method)(*c.args, **c.kwargs)

    try:
        run()
    except Exception as err:  # the exact type is asserted by the caller
        return err
    pytest.fail(f"{c.method}{c.args} {c.kwargs} was accepted")


def _assert_refused(store, c: Case, *, twin: bool = False) -> None:
    err = _call(store, c, twin=twin)
    assert type(err) is c.error, f"{c.method}: {type(err).__name__}: {err}"
    assert str(err) == c.message


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def contract_store(request, tmp_path_factory):
    """One store per backend for the module: a refused call must leave it untouched anyway."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('contract') / 'store.db'}"
    else:
        url = f"{request.getfixturevalue('redis_server').url}?prefix=contract{uuid.uuid4().hex[:8]}:"
    store = store_from_url(url)
    yield store
    store.close()


@pytest.fixture(scope="module")
def unreachable_store():
    store = store_from_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    yield store
    store.close()


def test_every_public_method_with_arguments_is_covered():
    from airflow_agent_provider.stores.base import Store

    names = {name for name in dir(Store) if not name.startswith("_") and callable(getattr(Store, name))}
    twins = {name for name in names if name.startswith("a") and name[1:] in names}
    without_arguments = {"ping", "close", "store_time"}
    assert names - twins - without_arguments == {c.method for c in CASES}
    assert {t[1:] for t in twins} - without_arguments == {c.method for c in ASYNC_CASES}


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_sync_methods_refuse_bad_arguments(contract_store, c):
    _assert_refused(contract_store, c)


@pytest.mark.parametrize("c", ASYNC_CASES, ids=[c.id for c in ASYNC_CASES])
def test_async_twins_refuse_bad_arguments(contract_store, c):
    _assert_refused(contract_store, c, twin=True)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_arguments_are_checked_before_the_backend_is_reached(unreachable_store, c):
    """No I/O happens for a bad argument: an unreachable store gives the argument error, not StoreUnavailable."""
    _assert_refused(unreachable_store, c)
    if c.has_async:
        _assert_refused(unreachable_store, c, twin=True)


def test_refused_calls_left_nothing_in_the_stores(contract_store):
    """Runs after the refusals above (same module-scoped stores): not one row or key was written."""
    if contract_store.kind == "sqlite":
        with sqlite3.connect(contract_store.path) as conn:
            tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
        assert counts
        assert set(counts.values()) == {0}, counts
    else:
        client = contract_store.connection.client
        assert list(client.scan_iter(match=contract_store.prefix + "*")) == []


def test_boundary_values_are_accepted_alike(store):
    """What the contract allows, both stores accept with the same answer (zero tokens, zero amounts, inf)."""
    assert store.acquire("k", [RPW], 0, max_concurrent=1, lease_ttl_s=0.5).granted
    assert store.acquire("k2", (RPW,), now=1_800_000_000).granted  # a tuple of tiers, an int clock
    assert store.penalize("p", delay_s=0) == pytest.approx(store.store_time(), abs=1.0)
    free = store.budget_reserve("r0", [(RUN, 0.0)], 0.0, 0)  # nothing asked of an empty budget
    assert (free.granted, free.limit) == (True, 0.0)
    unlimited = store.budget_reserve("r1", [(RUN, INF)], 5, 60)  # an int amount
    assert (unlimited.granted, unlimited.limit) == (True, INF)
    assert store.budget_reserve("r2", [], 1.0, 60).granted
    assert store.budget_settle("r1", None) is True  # an unknown cost
    assert store.budget_settle("r3", 0, (ENTRY,), scopes=(RUN,)) is True
    assert store.runs_list(limit=0) == []  # clamped, as before
    assert store.breaker_record("k", False, CFG, trial_id=None) == "closed"


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("", 3, 10.0), ValueError, "tier name must not be empty"),
        (("rpm", 1.5, 10.0), TypeError, "tier 'rpm': limit must be an integer, got float"),
        (("rpm", 0, 10.0), ValueError, "tier 'rpm': limit must be >= 1, got 0"),
        (("rpm", 3, INF), ValueError, "tier 'rpm': window_s must be > 0, got inf"),
        (("rpm", 3, NAN), ValueError, "tier 'rpm': window_s must be > 0, got nan"),
        (("rpm", 3, "60"), TypeError, "tier 'rpm': window_s must be a number, got str"),
        (
            ("rpm", 3, 60.0, "calls"),
            ValueError,
            "tier 'rpm': unit must be 'requests' or 'tokens', got 'calls'",
        ),
    ],
)
def test_a_tier_is_checked_when_it_is_made(args, error, message):
    """Tiers reach both stores already valid: a float limit was truncated by Redis, compared as is by SQLite."""
    with pytest.raises(error) as info:
        Tier(*args)
    assert str(info.value) == message
