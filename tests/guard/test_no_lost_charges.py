"""No lost charges: the store goes away after a paid response and before its settlement.

A real failure, not a mock: the SQLite store's directory disappears (the volume is gone), or the
Redis server is shut down (and later restarted from its append-only file). The hook in the guarded
pipeline (``BEFORE_SETTLE``) only picks the moment. Then the retry, with the store back: the spend
is in the ledger exactly once, and the model was called exactly once.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.guard import pipeline
from airflow_agent_provider.guard.pipeline import UnsettledCharge
from airflow_agent_provider.hooks.store import get_store, reset_store
from airflow_agent_provider.operators.agent import LLMAgentOperator
from airflow_agent_provider.resilience.classify import classify
from tests.fixtures.redis_server import free_port
from tests.operators.agent_support import MemoryStateStore, XComTI, make_context, run_operator


class SQLiteVolume:
    """A SQLite store in its own directory, which can vanish and come back."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "volume"
        self.dir.mkdir()
        self.url = f"sqlite:///{self.dir / 'store.db'}"

    def go_away(self) -> None:
        get_store().close()  # its connection goes with the volume; the next operation must reopen the file
        os.rename(self.dir, str(self.dir) + ".gone")

    def come_back(self) -> None:
        os.rename(str(self.dir) + ".gone", self.dir)

    def stop(self) -> None:
        pass


class RedisOnDisk:
    """A private redis-server with an append-only file: shut down, then restarted on the same port."""

    def __init__(self, root: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not on PATH; the Redis store tests need a real server")
        self.dir, self.port = root / "redis", free_port()
        self.dir.mkdir()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.come_back()

    def come_back(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not come back")

    def go_away(self) -> None:
        assert self.proc is not None
        self.proc.terminate()  # a clean shutdown: the append-only file keeps every write
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture(params=["sqlite", "redis"])
def flaky_store(request, tmp_path, monkeypatch):
    """The backend, and the reservation ids at whose settlement it went away (once)."""
    backend = SQLiteVolume(tmp_path) if request.param == "sqlite" else RedisOnDisk(tmp_path)
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__STORE_URL", backend.url)
    reset_store()
    fired: list[str] = []

    def fail_once(pending) -> None:
        if not fired:
            fired.append(pending.reservation_id)
            backend.go_away()

    with _at_settlement(fail_once):
        try:
            yield backend, fired
        finally:
            backend.stop()
            reset_store()


@contextmanager
def _at_settlement(hook):
    pipeline.BEFORE_SETTLE.append(hook)
    try:
        yield
    finally:
        pipeline.BEFORE_SETTLE.remove(hook)


def _agent(**kwargs) -> LLMAgentOperator:
    return LLMAgentOperator(
        task_id="payer",
        prompt="Pay once [[reply: paid]]",
        cost_limit=1.0,
        retries=1,
        agent_meta={"workflow": "w", "module": "M", "agent": "payer", "critical": True},
        **kwargs,
    )


def _context(store: MemoryStateStore, run_id: str, try_number: int) -> dict:
    context = make_context(store=store)
    context["run_id"], context["ti"] = run_id, XComTI(try_number=try_number)
    return context


def _retry(backend, store: MemoryStateStore, run_id: str, **kwargs) -> dict:
    backend.come_back()
    reset_store()
    return run_operator(_agent(**kwargs), _context(store, run_id, try_number=2))


def _one_charge(run_id: str, result: dict) -> None:
    summary = Ledger(get_store()).run_summary("execute_tests", run_id)
    assert summary.total.calls == 1
    assert summary.total.usd == pytest.approx(result["cost_usd"])
    assert result["cost_usd"] > 0


def test_worker_path_the_retry_settles_the_paid_response(llm_connections, flaky_store):
    backend, fired = flaky_store
    state, run_id = MemoryStateStore(), "manual__lost1"
    with pytest.raises(UnsettledCharge) as failure:
        run_operator(_agent(execution="worker"), _context(state, run_id, try_number=1))
    assert classify(failure.value).transient  # the task retry comes back for it
    pending = state.data["agent_loop"]["pending"]  # persisted before the settlement was tried
    assert pending["reservation_id"] == fired[0]
    assert pending["result"]["response"]["text"] == "paid"
    assert llm_connections.stats()["requests"] == 1

    result = _retry(backend, state, run_id, execution="worker")
    assert result["text"] == "paid"
    assert result["rounds"] == 1
    assert llm_connections.stats()["requests"] == 1  # the retry did not call the model again
    _one_charge(run_id, result)
    assert state.data == {}


# SQLite here would need every thread's connection closed at once (the triggerer settles from a
# thread pool whose connections outlive a moved file); a Redis shutdown fails every client at once.
@pytest.mark.parametrize("flaky_store", ["redis"], indirect=True)
def test_triggerer_path_the_worker_settles_what_the_triggerer_was_paid_for(llm_connections, flaky_store):
    """The trigger's settlement fails: its event carries the paid response to a worker, which settles it."""
    from airflow.sdk.exceptions import TaskDeferred

    backend, fired = flaky_store
    state, run_id = MemoryStateStore(), "manual__lost2"
    op = _agent(execution="deferred")
    context = _context(state, run_id, try_number=1)
    op.render_template_fields(context)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)

    async def first():
        async for event in deferred.value.trigger.run():
            return event

    event = asyncio.run(first())
    assert event.payload["status"] == "error"
    assert event.payload["pending"]["reservation_id"] == fired[0]
    backend.come_back()
    reset_store()
    result = op.execute_complete(context, event=event.payload)  # the task resumes on a worker
    assert result["text"] == "paid"
    assert llm_connections.stats()["requests"] == 1
    _one_charge(run_id, result)


def test_a_settlement_that_already_happened_is_not_charged_twice(llm_connections, flaky_store):
    """Settled, but the store went away before the loop recorded it: the retry's settlement charges nothing."""
    from airflow_agent_provider.guard.pipeline import GuardedCaller

    backend, fired = flaky_store
    fired.append("the store goes away after the settlement here, not before")
    state, run_id = MemoryStateStore(), "manual__lost3"

    def settle_then_fail(pending) -> None:
        config = _agent().guard.for_run(dag_id="execute_tests", run_id=run_id)
        assert GuardedCaller(get_store(), config).settle_pending(pending).charged
        backend.go_away()

    with _at_settlement(settle_then_fail), pytest.raises(UnsettledCharge):
        run_operator(_agent(execution="worker"), _context(state, run_id, try_number=1))
    result = _retry(backend, state, run_id, execution="worker")
    assert llm_connections.stats()["requests"] == 1
    _one_charge(run_id, result)
