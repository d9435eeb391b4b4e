"""
Drivers of the agent loop: the only code that decides what happens between two model calls.

Every execution path runs an :class:`~airflow_agent_provider.agent_loop.state.AgentLoop` through
these functions, handing in a :class:`LoopHost` for what only it can do:

* the worker path: :func:`run_sync` with the worker's guarded call and ``task_state_store``;
* the deferred path: :func:`advance` on the worker to get the next request, the call in the
  triggerer, :func:`record_event` when the worker resumes;
* the triggerer path: :func:`run_async` inside the trigger.

Persistence rule: the loop is saved after every change that cost money or ran a tool (a recorded
call, tool results, a new iteration, a dropped invalid answer) and, through ``hold``, right after a
response arrives and before its settlement, so that a retry never pays for the same call twice and
never loses a charge.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from airflow_agent_provider.agent_loop.state import AgentLoop, LoopSpec, ToolRunner
    from airflow_agent_provider.guard.pipeline import GuardedResult, PendingCharge
    from airflow_agent_provider.llm.types import LLMRequest, ToolSpec

#: ``call(request, on_paid)``: the guarded model call (``on_paid`` must run before settlement).
SyncCall = Callable[["LLMRequest", Callable[["PendingCharge"], None]], "GuardedResult"]
AsyncCall = Callable[["LLMRequest", Callable[["PendingCharge"], None]], Awaitable["GuardedResult"]]


class LoopHost(Protocol):
    """What a path supplies to the loop."""

    spec: LoopSpec
    tool_specs: list[ToolSpec]
    run_tool: ToolRunner | None
    logger: Any
    #: The level of the one line logged per model call (``logging.INFO`` on a worker).
    round_log_level: int

    def names(self) -> Mapping[str, Any]:
        """Expression names besides ``last``/``iteration``: ``results``, ``params``, ``item``."""

    def render_prompt(self, last: dict[str, Any], iteration: int) -> str:
        """The prompt of iteration ``iteration`` (``last`` is the previous answer)."""

    def save(self, loop: AgentLoop) -> None:
        """Persist the loop (a no-op where there is nowhere to persist it)."""


def advance(loop: AgentLoop, host: LoopHost) -> LLMRequest | None:
    """
    Everything between two model calls: tools, answer validation, ``repeat_until``.

    Returns the next request, or None when the agent is done. Saves the loop if it changed, also
    when an error is raised (an invalid answer is dropped and the drop persisted).
    """
    seen = loop.revision
    try:
        while True:
            if loop.next_step(host.spec, host.run_tool, logger=host.logger) == "call":
                return loop.request(host.spec, host.tool_specs)
            if not loop.complete_answer(
                host.spec, names=host.names(), render_prompt=host.render_prompt, logger=host.logger
            ):
                return None
    finally:
        if loop.revision != seen:
            host.save(loop)


def holder(loop: AgentLoop, host: LoopHost) -> Callable[[PendingCharge], None]:
    """The ``on_paid`` of a guarded call: keep the paid response in the loop and persist it."""

    def hold(pending: PendingCharge) -> None:
        loop.hold(pending)
        host.save(loop)

    return hold


def record(loop: AgentLoop, host: LoopHost, guarded: GuardedResult) -> None:
    loop.record(guarded, logger=host.logger, level=host.round_log_level)
    host.save(loop)


def settle_held(loop: AgentLoop, host: LoopHost, settle: Callable[[PendingCharge], GuardedResult]) -> None:
    """A paid response of an earlier try whose charge was not confirmed: settle it, then count it."""
    if loop.pending is not None:
        host.logger.info(
            "Settling the paid response of an earlier try (reservation %s); the model is not called again",
            loop.pending.reservation_id,
        )
        record(loop, host, settle(loop.pending))


def run_sync(
    loop: AgentLoop, host: LoopHost, call: SyncCall, settle: Callable[[PendingCharge], GuardedResult]
) -> AgentLoop:
    """Run the loop to its end with blocking calls (the worker path)."""
    settle_held(loop, host, settle)
    while (request := advance(loop, host)) is not None:
        record(loop, host, call(request, holder(loop, host)))
    return loop


async def run_async(
    loop: AgentLoop,
    host: LoopHost,
    call: AsyncCall,
    settle: Callable[[PendingCharge], Awaitable[GuardedResult]],
) -> AgentLoop:
    """Run the loop to its end with awaited calls (the triggerer path); the same steps as :func:`run_sync`."""
    if loop.pending is not None:
        host.logger.info(
            "Settling the paid response of an earlier try (reservation %s)", loop.pending.reservation_id
        )
        record(loop, host, await settle(loop.pending))
    while (request := advance(loop, host)) is not None:
        record(loop, host, await call(request, holder(loop, host)))
    return loop


__all__ = [
    "AsyncCall",
    "LoopHost",
    "SyncCall",
    "advance",
    "holder",
    "record",
    "run_async",
    "run_sync",
    "settle_held",
]
