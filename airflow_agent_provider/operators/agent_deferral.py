"""
The triggerer side of ``LLMAgentOperator``: the triggers it defers to, and resuming from their events.

Two triggers, one loop (:mod:`airflow_agent_provider.agent_loop.drive`): ``LLMCallTrigger`` awaits
one model call and the task resumes on a worker after it (agents with tools, one deferral per
round); ``AgentTrigger`` runs the rest of a tool-less agent's loop and ends the task there. What
comes back (:func:`complete`) is recorded into the same :class:`AgentLoop` the worker path uses,
or, for a failure, rebuilt as the classified error the retry policy decides on. Kept apart from the
operator module so that the operator reads as its execution paths; imported only when an agent runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.agent_loop import AgentLoop
from airflow_agent_provider.agent_loop.drive import holder, record
from airflow_agent_provider.operators import agent_runtime as rt

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_agent_provider.llm.types import LLMRequest
    from airflow_agent_provider.operators.agent import LLMAgentOperator
    from airflow_agent_provider.triggers.agent import AgentTrigger
    from airflow_agent_provider.triggers.llm import LLMCallTrigger


def _as_event(event: Any) -> Mapping[str, Any]:
    if isinstance(event, Mapping):
        return event
    return {
        "status": "error",
        "error_type": "EmptyTriggerEvent",
        "message": f"unexpected trigger event {event!r}",
    }


def complete(
    op: LLMAgentOperator, context: Context, event: Any, state: dict[str, Any] | None
) -> dict[str, Any]:
    """Resume after a deferral: record the call (or settle it), then defer again or finish."""
    event = _as_event(event)
    if event.get("status") == "resume":  # started in the triggerer, continued here (a retry)
        op.log.info("Continuing on a worker: %s", event.get("reason", "resume"))
        return op._execute(context)
    if event.get("status") == "done":  # the whole loop ran in the triggerer (reported back, e.g. dag.test)
        rt.clear_state(context, op.state_key, op.log)
        return rt.scrubbed_result(event["agent_result"])
    if event.get("status") != "success" and not event.get("pending"):
        from airflow_agent_provider.resilience.classify import ClassifiedError

        if event.get("loop"):  # what the triggerer paid for is kept for the retry
            rt.WorkerHost.saver(context, op.state_key, op.log)(AgentLoop.from_dict(event["loop"]))
        # Rebuilt with its classification (transient/permanent, retry-after) for the retry policy.
        raise ClassifiedError.from_event(event)
    from airflow_agent_provider.guard.pipeline import GuardedResult, PendingCharge

    # The loop travels in the event (AgentTrigger) or the defer kwargs; dag.test() passes only the
    # event, and then it comes from task_state_store, where it was saved just before deferring.
    held = event.get("loop") or state
    loop = AgentLoop.from_dict(held) if held else op._load(context, after_deferral=True)
    host = op._host(context)

    if event.get("pending"):  # paid in the triggerer, not settled: persist it first, then settle here
        holder(loop, host)(PendingCharge.from_dict(event["pending"]))
        return op._continue(context, loop)
    if "result" in event:
        guarded = GuardedResult.from_dict(event["result"])
    else:  # a trigger used without a guard (hand-built): only the response
        from airflow_agent_provider.llm.types import LLMResponse

        guarded = rt.unguarded(LLMResponse.from_dict(event["response"]), loop, op.guard.price_override)
    record(loop, host, guarded)
    return op._continue(context, loop)


def call_trigger(
    op: LLMAgentOperator, request: LLMRequest, context: Context, loop: AgentLoop
) -> LLMCallTrigger:
    """One model call awaited in the triggerer; the task resumes on a worker with its result."""
    from airflow_agent_provider.triggers.llm import LLMCallTrigger

    return LLMCallTrigger(
        llm_conn_id=op.llm_conn_id,
        provider=op.hook.provider,
        request=request,
        guard=op._guard_config(context),
        step_id=op._step_id(context, loop),
    )


def agent_trigger(op: LLMAgentOperator, context: Context, loop: AgentLoop) -> AgentTrigger:
    """The rest of a tool-less agent's loop, run in the triggerer, which ends the task."""
    from airflow_agent_provider.agent_loop.config import AgentRun
    from airflow_agent_provider.triggers.agent import AgentTrigger

    agent = dataclasses.replace(op.agent_config(), prompt=op._prompt_template or op.prompt)
    run = AgentRun(
        loop=loop,
        spec=op._spec(),
        guard=op._guard_config(context),
        llm_conn_id=op.llm_conn_id,
        provider=op.hook.provider,
        step_prefix=rt.step_prefix(context),
        names=rt.carried_names(op._names(context), context),
        item_fields=rt.item_fields(context, op.item),
        timeout_s=rt.remaining_s(context, op.execution_timeout),
    )
    return AgentTrigger(agent=agent, run=run)


__all__ = ["agent_trigger", "call_trigger", "complete"]
