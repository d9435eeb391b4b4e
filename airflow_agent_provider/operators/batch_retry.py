"""
The retry of a batch agent whose request failed: a batch of one, or a real-time call near the deadline.

Why not the group's batch again: it has ended. Why a batch of one rather than waiting for others:
the agent's retry is its own (its ``retries:`` and delays), and a batch of one still costs half.
``batch_fallback: realtime`` trades that half for time when less than half of the deadline is
left, or when the request expired (a second batch could take the whole window again).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_agent_provider.operators.batch_manifest import (
    MemberEntry,
    custom_id_for,
    reservation_id_for,
)

if TYPE_CHECKING:
    from airflow_agent_provider.operators.batch import BatchAgentOperator
    from airflow_agent_provider.operators.batch_manifest import Manifest


@dataclass
class Resubmitted:
    """This agent's own request: its entry, batch handle and deadline."""

    entry: MemberEntry
    handle: dict[str, Any]
    deadline_at: float


def goes_realtime(op: BatchAgentOperator, manifest: Manifest, own: dict[str, Any]) -> bool:
    """Whether the retry is a real-time call (``batch_fallback: realtime`` and the deadline near)."""
    if op.batch_fallback != "realtime":
        return False
    if own.get("last_kind") == "expired":
        return True
    return manifest.deadline_at - time.time() < op.deadline / 2


def resubmit(op: BatchAgentOperator, context: Any, manifest: Manifest, own: dict[str, Any]) -> Resubmitted:
    """Reserve (batch price) and submit this agent's request alone; keep it in ``task_state_store``."""
    from airflow_agent_provider.operators import batch_io, batch_render
    from airflow_agent_provider.operators.batch_submit import RESERVATION_GRACE_S

    ti = context["ti"]
    map_index = op._map_index(context)
    attempt = int(getattr(ti, "try_number", 1) or 1)
    loop = op._load(context)
    request = loop.request(op._spec(), [])
    entry = MemberEntry(
        op.task_id,
        map_index,
        "reserved",
        custom_id_for(op.task_id, map_index, attempt),
        model=request.model,
        reservation_id=reservation_id_for(ti.dag_id, context["run_id"], op.task_id, map_index, attempt),
    )
    member = batch_render.RenderedMember(
        op.task_id,
        map_index,
        request.model,
        request=request,
        guard=op._guard_config(context),
        price_override=op.price_override,
    )
    refusal = batch_render.reserve(member, entry, op.deadline + RESERVATION_GRACE_S)
    if refusal:
        raise AirflowFailException(f"agent {op.task_id} was not resubmitted: {refusal}")
    handles = batch_io.submit(manifest.llm_conn_id, manifest.provider, [(entry.custom_id, request)])
    handle = handles[0].to_dict()
    entry.status, entry.batch_id = "submitted", handle["batch_id"]
    deadline_at = time.time() + op.deadline
    own.update(current=entry.to_dict(), handle=handle, deadline_at=deadline_at)
    op._save_own(context, own)
    op.log.info("Resubmitted request %s alone as batch %s", entry.custom_id, entry.batch_id)
    return Resubmitted(entry, handle, deadline_at)


__all__ = ["Resubmitted", "goes_realtime", "resubmit"]
