"""
Batch delivery end to end: real ``dag.test()`` runs, the real SDKs against the local server's batch APIs.

Each test is one of issue 16's: a batch layer feeding a real-time summary; a retry after submission
re-attaching (no second batch, no double charge); partial failures and an expiry; a budget that
covers only half the batch.
"""

from __future__ import annotations

import pytest

from airflow_agent_provider.cost.batch_pricing import batch_price
from airflow_agent_provider.llm.types import Usage
from airflow_agent_provider.operators.result import RESULT_TASK_ID
from tests.batch._support import QUICK_RETRY, batch_agents, batch_dag, fast_polling, ledger
from tests.fixtures.airflow_env import task_states, xcom_result

SUBMIT = "batch__openai__gpt-5-mini__L0"


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    fast_polling(monkeypatch)


def _summary_module(count: int = 20) -> dict:
    """Module ``Report``: one real-time agent reading every ``Close`` agent's answer."""
    return {
        "Report": {
            "agents": [
                {
                    "name": "summary",
                    "dependencies": [f"Close.acct_{i:02d}" for i in range(count)],
                    "prompt": "SUMMARISE the close: {{ upstream_text }} [[reply: all accounts reconciled]]",
                }
            ],
        }
    }


def test_batch_module_feeds_a_realtime_summary(tmp_path, run_dag, llm_connections):
    llm = llm_connections
    dag = batch_dag(tmp_path, "batch_close", batch_agents(20), modules=_summary_module())
    run = run_dag(dag)

    states = task_states(run)
    assert str(run.state) == "success", states
    assert llm.batches_created("openai", "gpt-5-mini") == 1  # one batch for the whole layer
    assert states[SUBMIT] == "success"
    result = xcom_result(run, RESULT_TASK_ID)
    assert result["outcome"] == "success"
    close = {k: v for k, v in result["agents"].items() if k.startswith("Close.")}
    assert len(close) == 20
    assert all(a["status"] == "success" for a in close.values())
    assert xcom_result(run, "Close.acct_07")["text"] == "account 07 reconciled"
    assert xcom_result(run, "Close.acct_07")["delivery"] == "batch"
    # the real-time summary saw the batch answers
    summary_requests = [e for e in llm.stats()["log"] if "SUMMARISE" in (e.get("user_excerpt") or "")]
    assert len(summary_requests) == 1
    assert result["agents"]["Report.summary"]["status"] == "success"

    entries = ledger(run)
    batch_entries = [e for e in entries if e.delivery == "batch"]
    assert sorted(e.agent for e in batch_entries) == [f"acct_{i:02d}" for i in range(20)]  # once each
    assert [e.delivery for e in entries if e.agent == "summary"] == ["realtime"]
    for entry in batch_entries:  # charged at the batch price of what it used
        expected = batch_price("openai", "gpt-5-mini", Usage(entry.input_tokens, entry.output_tokens))
        assert entry.usd == pytest.approx(expected.usd)
    assert sum(e.usd for e in entries) == pytest.approx(result["totals"]["cost_usd"])


def test_a_retry_after_submission_reattaches_without_a_second_batch_or_charge(
    tmp_path, run_dag, llm_connections, monkeypatch
):
    from airflow_agent_provider.operators import batch as batch_op, batch_submit

    llm = llm_connections
    failed: set[str] = set()

    def fail_submit_once(manifest):
        if "submit" not in failed:
            failed.add("submit")
            raise RuntimeError("worker lost right after the batch was created")

    def fail_member_once(op, entry):
        if op.task_id == "Close.acct_03" and "member" not in failed:
            failed.add("member")
            raise RuntimeError("worker lost right after settling")

    monkeypatch.setattr(batch_submit, "AFTER_SUBMIT", [fail_submit_once])
    monkeypatch.setattr(batch_op, "AFTER_SETTLE", [fail_member_once])
    dag = batch_dag(tmp_path, "batch_reattach", batch_agents(6), defaults={"retries": QUICK_RETRY})
    run = run_dag(dag)

    assert failed == {"submit", "member"}  # both tasks did fail once after the batch existed
    assert str(run.state) == "success", task_states(run)
    assert llm.batches_created("openai", "gpt-5-mini") == 1  # the retries re-attached
    entries = ledger(run)
    assert sorted(e.agent for e in entries) == [f"acct_{i:02d}" for i in range(6)]  # each charged once
    assert xcom_result(run, "Close.acct_03")["text"] == "account 03 reconciled"
    assert sum(e.usd for e in entries) == pytest.approx(
        xcom_result(run, RESULT_TASK_ID)["totals"]["cost_usd"]
    )
