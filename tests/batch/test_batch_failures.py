"""
Batch delivery when requests fail, expire or are not covered: real ``dag.test()`` runs, the real SDKs
against the local server's batch APIs (issue 16). Apart from ``test_batch_run`` so that the two
pytest workers share the batch runs.
"""

from __future__ import annotations

import pytest

from airflow_agent_provider.operators.result import RESULT_TASK_ID
from tests.batch._support import QUICK_RETRY, batch_agents, batch_dag, fast_polling, ledger
from tests.fixtures.airflow_env import task_states, xcom_result


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    fast_polling(monkeypatch)


def test_failed_and_expired_requests_fail_only_their_agents(tmp_path, run_dag, llm_connections):
    llm = llm_connections
    # acct_01/02 get permanent 400s, acct_03 a transient 500; acct_04 never finishes, so it expires.
    llm.batch_configure(
        fail={"Close-acct_01": 400, "Close-acct_02": 400, "Close-acct_03": 500},
        unfinished=["Close-acct_04"],
        expire_after_seconds=3,
    )
    agents = batch_agents(20, critical=False)
    dag = batch_dag(
        tmp_path,
        "batch_partial",
        agents,
        allow_partial_completion=True,
        defaults={"retries": QUICK_RETRY},
    )
    run = run_dag(dag)

    result = xcom_result(run, RESULT_TASK_ID)
    statuses = {k.split(".", 1)[1]: a["status"] for k, a in result["agents"].items()}
    # the retries of acct_03 (transient) and acct_04 (expired) are batches of one, which succeed
    failed = sorted(name for name, status in statuses.items() if status != "success")
    assert failed == ["acct_01", "acct_02"], statuses
    for name in failed:
        assert f"batch request Close-{name}" in result["agents"][f"Close.{name}"]["reason"], result["agents"]
    assert result["outcome"] == "partial"
    assert str(run.state) == "success"
    # one batch for the group, one retry batch each for the transient and the expired request
    assert llm.batches_created("openai", "gpt-5-mini") == 3
    entries = ledger(run)
    assert sorted(e.agent for e in entries) == sorted(n for n, s in statuses.items() if s == "success")


def test_a_budget_for_half_the_batch_refuses_the_rest_before_anything_is_sent(
    tmp_path, run_dag, llm_connections
):
    llm = llm_connections
    # Output at 1000 USD/Mtok and free input: a 1000-token request can cost 1 USD in real time, 0.5
    # at the batch price, which is what each reservation holds.
    price = {"input_per_mtok": 0.0, "output_per_mtok": 1000.0}
    agents = batch_agents(10, critical=False, max_tokens=1000, price=price)
    budget = 2.6  # room for five requests at their most possible batch cost
    dag = batch_dag(tmp_path, "batch_budget", agents, cost_budget=budget, allow_partial_completion=True)
    run = run_dag(dag)

    result = xcom_result(run, RESULT_TASK_ID)
    statuses = {k: a["status"] for k, a in result["agents"].items()}
    refused = sorted(k for k, s in statuses.items() if s != "success")
    assert len(refused) == 5, statuses
    for task_id in refused:
        assert "budget" in result["agents"][task_id]["reason"].lower(), result["agents"][task_id]
    stats = llm.batch_stats()
    assert [b["counts"]["total"] for b in stats["batches"]] == [5]  # only what the budget covered was sent
    assert sum(e.usd for e in ledger(run)) <= budget


def test_an_expired_request_retries_in_real_time_with_batch_fallback(tmp_path, run_dag, llm_connections):
    llm = llm_connections
    llm.batch_configure(unfinished=["Close-acct_01"], expire_after_seconds=2)
    dag = batch_dag(
        tmp_path,
        "batch_fallback_rt",
        batch_agents(3),
        close={"batch_fallback": "realtime"},
        defaults={"retries": QUICK_RETRY},
    )
    run = run_dag(dag)

    assert str(run.state) == "success", task_states(run)
    assert llm.batches_created("openai", "gpt-5-mini") == 1  # the retry did not wait for a second batch
    realtime = [e for e in llm.stats()["log"] if "account 01" in (e.get("user_excerpt") or "")]
    assert len(realtime) == 1  # acct_01 was answered by one real-time call
    deliveries = {e.agent: e.delivery for e in ledger(run)}
    assert deliveries == {"acct_00": "batch", "acct_01": "realtime", "acct_02": "batch"}
    assert xcom_result(run, "Close.acct_01")["text"] == "account 01 reconciled"
