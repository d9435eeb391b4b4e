"""Every GET route only reads: after each request the store holds exactly what it held before.

Each route runs against a store (SQLite file and redis-server) holding spend, a live reservation,
a rate-limit pause and two open breakers, one of them past its reset timeout, which a reading
``breaker_state`` must report as ``half_open`` without persisting the transition. "Unchanged" is
checked at the store's own level, so a write of the same value counts too:

- SQLite: another connection's ``PRAGMA data_version`` (changes with any commit by anyone else)
  and a full dump of every table; and the routes answer while another connection holds the write
  lock, which a route that took ``BEGIN IMMEDIATE`` could not (the store's busy timeout is short);
- Redis: keyspace notifications for every write command on the store's prefix (delivered in order
  before a marker message published after the request), and a ``DUMP`` of every key.
"""

from __future__ import annotations

import sqlite3
import time
from urllib.parse import urlsplit

import pytest

from airflow_agent_provider.cost.budget import BudgetGuard, BudgetLimits, CallScope
from airflow_agent_provider.stores.breaker_api import BreakerConfig
from tests.plugins.conftest import AT, DAG, RUN, make_client

R = RUN.replace("+", "%2B")
PAUSED = "openai/gpt-5-mini"
OPEN = "anthropic/claude-sonnet-4-5"  # open, reset timeout not yet passed
DUE = "local/mystery-model"  # open, reset timeout passed: reported half_open, nothing stored

GET_ROUTES = [
    "/",
    "/api/openapi.json",
    "/api/store",
    f"/api/runs/{DAG}/{R}/costs",
    f"/api/runs/{DAG}/{R}/snapshot",
    f"/api/runs/{DAG}/running/costs",
    f"/api/workflows/{DAG}/spend",
    f"/api/workflows/{DAG}/spend?day=2026-11-30&month=2026-11",
    f"/api/limits/{PAUSED}",
    "/api/limits/openai",
    "/api/limits",
    "/api/overview",
    "/api/runs",
    f"/api/runs?dag_id={DAG}",
    f"/api/runs/{DAG}/{R}",
    f"/api/runs/{DAG}/running",
    f"/api/runs/{DAG}/never-ran",
    f"/api/workflows/{DAG}",
    "/api/workflows/typo_dag",
    f"/api/breakers/{OPEN}",
    f"/api/breakers/{DUE}",
    "/api/breakers/never/seen",
]
#: Routes that answer "unknown" (404) here: reading that something is unknown must not write either.
UNKNOWN = {
    "/api/limits/openai",
    "/api/breakers/never/seen",
    f"/api/runs/{DAG}/never-ran",
    "/api/workflows/typo_dag",
}


@pytest.fixture
def busy_store(spent_store):
    """Spend of two runs, a live reservation, a pause, an open breaker and one due for a trial."""
    call = CallScope(DAG, "running", "Finance", "reconcile", "gpt-5-mini", "openai", at=AT)
    BudgetGuard(spent_store).reserve(call, 0.5, BudgetLimits(), reservation_id="live")
    spent_store.penalize(PAUSED, delay_s=600)
    spent_store.breaker_record(OPEN, False, BreakerConfig(failure_threshold=1, reset_timeout_s=600))
    spent_store.breaker_record(DUE, False, BreakerConfig(failure_threshold=1, reset_timeout_s=0.05))
    time.sleep(0.1)  # let DUE's reset timeout pass (a precondition, not a timed assertion)
    return spent_store


class SQLiteWatch:
    def __init__(self, url: str) -> None:
        self.conn = sqlite3.connect(urlsplit(url).path, isolation_level=None)

    def contents(self) -> tuple[int, list[str]]:
        (version,) = self.conn.execute("PRAGMA data_version").fetchone()
        return version, list(self.conn.iterdump())

    def writes_during(self, action) -> list[str]:
        before = self.contents()
        action()
        after = self.contents()
        if before == after:
            return []
        changed = sorted(set(before[1]) ^ set(after[1]))
        return [f"data_version {before[0]} -> {after[0]}", *changed]

    def close(self) -> None:
        self.conn.close()


class RedisWatch:
    def __init__(self, url: str) -> None:
        import redis

        parts = urlsplit(url)
        self.prefix = parts.query.split("prefix=", 1)[1]
        self.client = redis.Redis.from_url(f"{parts.scheme}://{parts.netloc}{parts.path}")
        self.saved = self.client.config_get("notify-keyspace-events")["notify-keyspace-events"]
        # Every class of write (generic, string, list, set, hash, zset, stream), not expiry/eviction.
        self.client.config_set("notify-keyspace-events", "Kg$lshzt")
        self.pubsub = self.client.pubsub()
        self.marker = f"{self.prefix}marker"
        self.pubsub.psubscribe(f"__keyspace@0__:{self.prefix}*")
        self.pubsub.subscribe(self.marker)
        self._drain()

    def _drain(self) -> list[str]:
        """Every notification until our marker message: Redis delivers them in order."""
        self.client.publish(self.marker, "end")
        seen = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            if message["type"] == "message" and message["channel"] == self.marker.encode():
                return seen
            if message["type"] == "pmessage":
                seen.append(f"{message['channel'].decode()}: {message['data'].decode()}")
        raise AssertionError("the marker message never came back from redis-server")

    def dump(self) -> dict[bytes, bytes]:
        return {key: self.client.dump(key) for key in sorted(self.client.scan_iter(match=f"{self.prefix}*"))}

    def writes_during(self, action) -> list[str]:
        before = self.dump()
        action()
        events = self._drain()
        after = self.dump()
        changed = [
            key.decode() for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)
        ]
        return events + [f"changed: {key}" for key in changed]

    def close(self) -> None:
        self.pubsub.close()
        self.client.config_set("notify-keyspace-events", self.saved)
        self.client.close()


@pytest.fixture
def watch(store_url, store_kind):
    watcher = SQLiteWatch(store_url) if store_kind == "sqlite" else RedisWatch(store_url)
    try:
        yield watcher
    finally:
        watcher.close()


class WritingReads:
    """A store whose ``breaker_state`` persists the open -> half-open transition it reports (what
    the breaker read did before it was made side-effect free): the watch must see it via the route."""

    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def breaker_state(self, key):
        self._store.breaker_allow(key, BreakerConfig())
        return self._store.breaker_state(key)


def test_the_watch_sees_a_route_that_writes(busy_store, store_url, watch):
    with make_client(WritingReads(busy_store), store_url) as client:
        writes = watch.writes_during(lambda: client.get(f"/api/breakers/{DUE}"))
    assert writes


@pytest.mark.parametrize("path", GET_ROUTES)
def test_get_route_leaves_the_store_unchanged(busy_store, store_url, watch, path):
    responses = []
    with make_client(busy_store, store_url) as client:
        writes = watch.writes_during(lambda: responses.append(client.get(path)))
    assert responses[0].status_code == (404 if path in UNKNOWN else 200), responses[0].text
    assert writes == [], writes


def test_due_breaker_reads_half_open_and_stays_open_in_the_store(busy_store, store_url, watch):
    with make_client(busy_store, store_url) as client:
        states = []
        writes = watch.writes_during(
            lambda: states.extend(client.get(f"/api/breakers/{DUE}").json()["state"] for _ in range(3))
        )
        snapshot = client.get(f"/api/runs/{DAG}/{R}/snapshot").json()
    assert states == ["half_open"] * 3
    assert writes == []
    assert {m["key"]: m["breaker"] for m in snapshot["models"]}[DUE] == "half_open"
    assert {m["key"]: m["breaker"] for m in snapshot["models"]}[OPEN] == "open"


def test_sqlite_reads_answer_while_another_connection_holds_the_write_lock(tmp_path):
    from airflow_agent_provider.stores.sqlite import SQLiteStore
    from tests.plugins.conftest import charge

    path = tmp_path / "store.db"
    store = SQLiteStore(path, busy_timeout_s=0.2)
    charge(store)
    call = CallScope(DAG, "running", "Finance", "reconcile", "gpt-5-mini", "openai", at=AT)
    BudgetGuard(store).reserve(call, 0.5, BudgetLimits(), reservation_id="live")
    store.penalize(PAUSED, delay_s=600)
    store.breaker_record(OPEN, False, BreakerConfig(failure_threshold=1, reset_timeout_s=600))
    store.breaker_record(DUE, False, BreakerConfig(failure_threshold=1, reset_timeout_s=0.05))
    time.sleep(0.1)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # the write lock, held for the whole test
        with make_client(store, f"sqlite:///{path}") as client:
            for route in GET_ROUTES:
                response = client.get(route)
                assert response.status_code == (404 if route in UNKNOWN else 200), (route, response.text)
        writer.execute("ROLLBACK")
    finally:
        writer.close()
        store.close()
