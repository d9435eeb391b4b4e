"""
BatchTrigger: wait in the triggerer for one request of a provider batch, without a worker.

Every member agent of a batch defers to its own trigger (so each keeps its own task, result and
retry), but the triggers of one batch share **one poll**: the first trigger of a batch in a
triggerer process starts a :class:`_BatchPoll` on the event loop, later ones join it, and the poll
reads the batch's status once per interval for all of them, backing off while nothing changes
(``poll_interval`` growing by half up to ``max_poll_interval``). When the batch has ended, its
results are downloaded once and every waiting trigger fires with its own request's outcome. Nothing
blocks the loop: the SDK's async clients do the I/O.

Past ``deadline_at`` the poll cancels the batch once (the providers then end it, and requests that
had not run come back ``cancelled``): a deadline shorter than the providers' 24 h window is kept.

Events: ``{"status": "done", "outcome": RequestOutcome.to_dict(), "batch_id", "provider_status"}``
or, when the batch cannot be read, ``{"status": "error", ...}`` (``resilience.classify.error_event``).
The kwargs hold ids only, never a key or a prompt.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_agent_provider.triggers._events import trigger_event
from airflow_agent_provider.triggers._runtime import aload_runtime

#: First wait between two reads of a batch, and the longest one after backing off (seconds).
DEFAULT_POLL_INTERVAL_S = 30.0
DEFAULT_MAX_POLL_INTERVAL_S = 300.0
BACKOFF_FACTOR = 1.5

# One registry of live polls per event loop (a dag.test() run and a triggerer each have their own).
_POLLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], _BatchPoll]] = (
    weakref.WeakKeyDictionary()
)


class _BatchPoll:
    """The one poll of one batch in this event loop, shared by all triggers waiting on it."""

    def __init__(
        self,
        llm_conn_id: str,
        handle: dict[str, Any],
        interval_s: float,
        max_interval_s: float,
        deadline_at: float | None,
    ) -> None:
        self.llm_conn_id = llm_conn_id
        self.handle = handle
        self.interval_s = interval_s
        self.max_interval_s = max(max_interval_s, interval_s)
        self.deadline_at = deadline_at
        self.waiters = 0
        self.polls = 0
        self.done: asyncio.Future[tuple[dict[str, Any], str]] = asyncio.get_running_loop().create_future()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        from airflow_agent_provider.operators import batch_io

        try:
            interval, last, cancelled = self.interval_s, None, False
            while True:
                status = await batch_io.aretrieve(self.llm_conn_id, self.handle)
                self.polls += 1
                if status.ended:
                    results = await batch_io.aresults(self.llm_conn_id, self.handle)
                    outcomes = {cid: o.to_dict() for cid, o in results.outcomes.items()}
                    self.done.set_result((outcomes, results.status.provider_status))
                    return
                if not cancelled and self.deadline_at is not None and time.time() >= self.deadline_at:
                    await batch_io.acancel(self.llm_conn_id, self.handle)
                    cancelled = True
                    interval = self.interval_s
                seen = (status.provider_status, status.succeeded, status.errored, status.processing)
                if seen != last:  # progress: look again soon; no progress: back off
                    interval, last = self.interval_s, seen
                await asyncio.sleep(interval)
                interval = min(interval * BACKOFF_FACTOR, self.max_interval_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self.done.done():
                self.done.set_exception(exc)

    async def wait(self) -> tuple[dict[str, Any], str]:
        self.waiters += 1
        try:
            return await asyncio.shield(self.done)
        finally:
            self.waiters -= 1


def _poll_for(
    llm_conn_id: str,
    handle: dict[str, Any],
    interval_s: float,
    max_interval_s: float,
    deadline_at: float | None,
) -> _BatchPoll:
    loop = asyncio.get_running_loop()
    polls = _POLLS.setdefault(loop, {})
    key = (llm_conn_id, str(handle["batch_id"]))
    poll = polls.get(key)
    if poll is None or (poll.done.done() and poll.done.exception() is not None):
        poll = polls[key] = _BatchPoll(llm_conn_id, handle, interval_s, max_interval_s, deadline_at)
    return poll


def _forget(llm_conn_id: str, batch_id: str, poll: _BatchPoll) -> None:
    """Drop a poll nobody waits on any more; an ended one is kept briefly for late joiners."""
    polls = _POLLS.get(asyncio.get_running_loop(), {})
    if poll.waiters or polls.get((llm_conn_id, batch_id)) is not poll:
        return
    if not poll.done.done():
        poll.task.cancel()
        polls.pop((llm_conn_id, batch_id), None)
    else:
        asyncio.get_running_loop().call_later(
            60.0, lambda: polls.pop((llm_conn_id, batch_id), None) if not poll.waiters else None
        )


class BatchTrigger(BaseTrigger):
    """
    Fire with the outcome of request ``custom_id`` of batch ``handle["batch_id"]``.

    :param llm_conn_id: The connection the batch was submitted with.
    :param handle: ``BatchHandle.to_dict()`` (ids only).
    :param custom_id: The request to report.
    :param poll_interval: First seconds between two reads of the batch.
    :param max_poll_interval: Longest seconds between two reads after backing off.
    :param deadline_at: Epoch seconds after which the batch is cancelled (None: the provider's window).
    """

    def __init__(
        self,
        llm_conn_id: str,
        handle: dict[str, Any],
        custom_id: str,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL_S,
        deadline_at: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger.__init__ is unannotated
        self.llm_conn_id = llm_conn_id
        self.handle = dict(handle)
        self.custom_id = custom_id
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = float(max_poll_interval)
        self.deadline_at = deadline_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "llm_conn_id": self.llm_conn_id,
                "handle": self.handle,
                "custom_id": self.custom_id,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "deadline_at": self.deadline_at,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await aload_runtime()  # the engines, off the event loop (once per triggerer process)
        from airflow_agent_provider.resilience.classify import error_event
        from airflow_agent_provider.security.redact import scrub_value

        batch_id = str(self.handle["batch_id"])
        poll = _poll_for(
            self.llm_conn_id, self.handle, self.poll_interval, self.max_poll_interval, self.deadline_at
        )
        try:
            outcomes, provider_status = await poll.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.warning("Batch %s could not be read: %s: %s", batch_id, type(exc).__name__, exc)
            yield trigger_event(scrub_value(error_event(exc, llm_conn_id=self.llm_conn_id)))
            return
        finally:
            _forget(self.llm_conn_id, batch_id, poll)
        outcome = outcomes.get(self.custom_id) or {
            "custom_id": self.custom_id,
            "kind": "errored",
            "error": f"batch {batch_id} ended without a result for {self.custom_id}",
            "status_code": None,
        }
        yield trigger_event(
            scrub_value(
                {
                    "status": "done",
                    "outcome": outcome,
                    "batch_id": batch_id,
                    "provider_status": provider_status,
                    "polls": poll.polls,
                }
            )
        )


__all__ = ["BatchTrigger"]
