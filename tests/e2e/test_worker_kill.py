"""No lost work: a worker process killed mid-call gives its lease and budget back by TTL only.

The worker is a real process running the guarded call against the local LLM server; SIGKILL means
no ``finally`` runs, exactly like a killed Celery worker. The retry (the next try of the task: a
new step id) then succeeds and the ledger holds one charge.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from airflow_agent_provider.cost.budget import BudgetLimits
from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.guard.config import GuardConfig, RateLimitRule
from airflow_agent_provider.guard.pipeline import GuardedCaller
from airflow_agent_provider.limits.limiter import RateLimiter
from airflow_agent_provider.limits.policy import RateLimitPolicy
from airflow_agent_provider.stores import store_from_url
from tests.guard.test_pipeline import _request, sdk_caller

TTL = 3.0
WORKER = textwrap.dedent(
    """
    import json, sys
    from airflow_agent_provider.guard.config import GuardConfig
    from airflow_agent_provider.guard.pipeline import GuardedCaller
    from airflow_agent_provider.stores import store_from_url
    from tests.guard.test_pipeline import _request, sdk_caller

    store_url, config, base_url = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]

    class Server:  # what sdk_caller needs
        openai_base_url = base_url + "/v1"
        anthropic_base_url = base_url

    caller = GuardedCaller(store_from_url(store_url), GuardConfig.from_dict(config))
    caller.call(_request("slow call [[latency:6]]"), step_id="wf/run/t/-1/try1/call0", llm_conn_id=None,
                call_target=sdk_caller(Server))
    """
)


def _config() -> GuardConfig:
    rule = RateLimitRule(key="kill-test", limits={"max_concurrent": 1, "lease_ttl_s": TTL}, provider="openai")
    return GuardConfig(
        dag_id="wf",
        run_id="run",
        module="M",
        agent="t",
        budgets=BudgetLimits(run_cost_budget=1.0),
        rate_limits=(rule,),
        reservation_ttl_s=TTL,
    )


def test_sigkilled_worker_releases_lease_and_reservation_by_ttl_and_retry_charges_once(tmp_path, llm):
    url = f"sqlite:///{tmp_path}/store.db"
    store = store_from_url(url)
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, url, __import__("json").dumps(_config().to_dict()), llm.url],
        cwd=os.getcwd(),
    )
    deadline = time.monotonic() + 90
    while llm.stats()["in_flight"] < 1:
        assert worker.poll() is None, "the worker exited before reaching the server"
        assert time.monotonic() < deadline, "the worker did not reach the server within 90 s"
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    killed_at = time.monotonic()

    # right after the kill the dead worker still holds its slot and its reservation
    policy = RateLimitPolicy(max_concurrent=1, lease_ttl_s=TTL)
    assert RateLimiter(store).try_acquire("kill-test", policy) is None
    assert store.budget_reserved("run:wf:run") > 0
    # ... until the TTL, not forever
    permit = RateLimiter(store).acquire("kill-test", policy, timeout=TTL + 5)
    assert time.monotonic() - killed_at >= TTL - 0.5
    permit.release()
    time.sleep(max(0.0, TTL - (time.monotonic() - killed_at)) + 0.2)
    assert store.budget_reserved("run:wf:run") == 0

    # the retry (next try, new step id) succeeds and is the only charge
    result = GuardedCaller(store, _config()).call(
        _request("slow call"), step_id="wf/run/t/-1/try2/call0", llm_conn_id=None, call_target=sdk_caller(llm)
    )
    assert result.cost.known
    summary = Ledger(store).run_summary("wf", "run")
    assert summary.total.calls == 1
    assert summary.total.usd == result.cost.usd
    # the killed worker's request still completes on the server (its client is gone): never charged
    deadline = time.monotonic() + 15
    while llm.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert llm.stats()["by_status"].get("200") == 2
    assert Ledger(store).run_summary("wf", "run").total.calls == 1
