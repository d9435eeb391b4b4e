"""BatchTrigger on one event loop (as in a triggerer): the agents of one batch share one poll and one download."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_agent_provider.llm.types import LLMRequest, Message
from airflow_agent_provider.operators import batch_io
from airflow_agent_provider.triggers.batch import BatchTrigger


def _requests(count: int) -> list[tuple[str, LLMRequest]]:
    return [
        (
            f"Close-acct_{i:02d}",
            LLMRequest(
                "openai",
                "gpt-5-mini",
                [Message("user", f"RECONCILE {i:02d} [[reply: account {i:02d} reconciled]]")],
                max_tokens=64,
            ),
        )
        for i in range(count)
    ]


async def _fire(triggers: list[BatchTrigger]) -> list[dict]:
    async def first(trigger: BatchTrigger) -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return await asyncio.gather(*(first(t) for t in triggers))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_triggers_of_one_batch_share_one_poll_and_one_download(llm_connections, provider):
    llm = llm_connections
    llm.batch_configure(processing_seconds=1.0)
    conn_id = f"agent_{provider}_default"
    model = "gpt-5-mini" if provider == "openai" else "claude-haiku-4-5"
    requests = [(cid, LLMRequest(provider, model, r.messages, max_tokens=64)) for cid, r in _requests(10)]
    (handle,) = batch_io.submit(conn_id, provider, requests)
    before = len(llm.stats()["log"])

    triggers = [
        BatchTrigger(conn_id, handle.to_dict(), cid, poll_interval=0.2, max_poll_interval=0.4)
        for cid, _ in requests
    ]
    events = asyncio.run(_fire(triggers))

    assert [e["status"] for e in events] == ["done"] * 10
    assert [e["outcome"]["custom_id"] for e in events] == [cid for cid, _ in requests]
    assert events[3]["outcome"]["response"]["text"] == "account 03 reconciled"
    calls = llm.stats()["log"][before:]
    downloads = [c for c in calls if c["path"].endswith(("/content", "/results"))]
    polls = [c for c in calls if c not in downloads]
    assert len(downloads) == 1  # one results download for ten waiting agents
    assert 1 <= len(polls) <= 12  # one shared poll every 0.2-0.4 s for about a second, not ten
    # every trigger reports the same shared poll; fetching the results re-reads the batch (once for
    # OpenAI, twice for Anthropic's SDK, which looks up the results URL), once per batch, not per agent
    (shared,) = {e["polls"] for e in events}
    assert shared <= len(polls) <= shared + 2


def test_a_trigger_past_its_deadline_cancels_the_batch_once(llm_connections):
    llm = llm_connections
    llm.batch_configure(unfinished=["Close-acct_01"])
    requests = _requests(3)
    (handle,) = batch_io.submit("agent_openai_default", "openai", requests)

    triggers = [
        BatchTrigger(
            "agent_openai_default",
            handle.to_dict(),
            cid,
            poll_interval=0.2,
            max_poll_interval=0.4,
            deadline_at=time.time() + 1.0,
        )
        for cid, _ in requests
    ]
    events = asyncio.run(_fire(triggers))

    kinds = {e["outcome"]["custom_id"]: e["outcome"]["kind"] for e in events}
    assert kinds == {"Close-acct_00": "succeeded", "Close-acct_01": "cancelled", "Close-acct_02": "succeeded"}
    cancels = [c for c in llm.stats()["log"] if c["path"].endswith("/cancel")]
    assert len(cancels) == 1
