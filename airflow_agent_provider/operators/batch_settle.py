"""
A batch request's money: settle it from the result's usage at the batch price, or release it.

Why per request: each member agent settles its own reservation (made by the submit task under a
per-request id), so the ledger has one entry per agent, charged once however often the agent's task
is retried or re-run (settling an id that was already settled charges nothing).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_agent_provider.guard.pipeline import GuardedResult
    from airflow_agent_provider.operators.batch_manifest import MemberEntry


def _scope(op: Any, context: Any, entry: MemberEntry, provider: str, model: str) -> Any:
    from airflow_agent_provider.cost.budget import CallScope

    meta = op.agent_meta
    dag_id, run_id = context["ti"].dag_id, context["run_id"]
    at = datetime.fromtimestamp(entry.reserved_at, timezone.utc) if entry.reserved_at else None
    return CallScope(
        dag_id=dag_id,
        run_id=run_id,
        module=str(meta.get("module") or ""),
        agent=str(meta.get("agent") or op.task_id),
        model=model,
        provider=provider,
        **({"at": at} if at is not None else {}),
    )


def settle(op: Any, context: Any, entry: MemberEntry, outcome: dict[str, Any]) -> GuardedResult:
    """Charge the answered request at the batch price (once) and wrap it like a guarded call."""
    from airflow_agent_provider.cost.budget import Reservation
    from airflow_agent_provider.guard.pipeline import GuardedResult
    from airflow_agent_provider.hooks.store import get_store
    from airflow_agent_provider.llm.types import LLMResponse
    from airflow_agent_provider.operators import batch_io
    from airflow_agent_provider.resilience.fallback import FallbackTarget
    from airflow_agent_provider.stores.budget_api import ReserveResult

    response = LLMResponse.from_dict(outcome["response"])
    provider = op.hook.provider
    model = entry.model or response.model
    cost = batch_io.price(provider, model, response, op.price_override)
    reservation = Reservation(
        get_store(),
        _scope(op, context, entry, provider, model),
        entry.reservation_id or f"{entry.custom_id}/batch",
        entry.amount_usd,
        ReserveResult(True, None, 0.0, 0.0, float("inf")),
    )
    charged = reservation.settle(cost, response.usage, delivery="batch")
    op.log.info(
        "Batch request %s: %s USD at batch price (%s)%s",
        entry.custom_id,
        cost.usd,
        cost.source,
        "" if charged else "; already charged by an earlier try",
    )
    target = FallbackTarget(provider, model, op.llm_conn_id)
    return GuardedResult(
        response=response,
        target=target,
        cost=cost,
        requests=1,
        attempts=[
            {"target": target.to_dict(), "outcome": "ok", "delivery": "batch", "batch_id": entry.batch_id}
        ],
        charged=charged,
    )


def release(entry: MemberEntry) -> None:
    """Free the reservation of a request that was not answered (errored, expired, cancelled)."""
    from airflow_agent_provider.hooks.store import get_store

    if entry.reservation_id:
        get_store().budget_release(entry.reservation_id)


def failure_event(outcome: dict[str, Any], entry: MemberEntry) -> dict[str, Any]:
    """
    The error event a failed request is raised as, classified for the agent's retry policy.

    Expired and cancelled requests never ran: transient (a retry sends them again). An errored
    request is as transient as its status code (429/5xx transient; 400, 401... permanent).
    """
    from airflow_agent_provider.llm.batch.types import RETRYABLE_STATUS

    kind = str(outcome.get("kind"))
    status = outcome.get("status_code")
    transient = kind in ("expired", "cancelled") or status in RETRYABLE_STATUS or status is None
    what = {
        "expired": "expired before it ran (the batch's window closed)",
        "cancelled": "was cancelled before it ran (the batch passed its deadline or was cancelled)",
    }.get(kind, f"failed: {outcome.get('error') or 'no detail'}")
    return {
        "status": "error",
        "error_type": f"BatchRequest{kind.capitalize()}",
        "status_code": status,
        "message": f"batch request {entry.custom_id} of batch {entry.batch_id} {what}",
        "kind": "transient" if transient else "permanent",
        "reason": f"batch_{kind}",
    }


__all__ = ["failure_event", "release", "settle"]
