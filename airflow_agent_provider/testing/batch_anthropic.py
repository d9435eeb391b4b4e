"""
The Anthropic Message Batches API of the local server: create, retrieve, cancel and results.

Shapes follow the ``anthropic`` SDK's ``MessageBatch`` and ``MessageBatchIndividualResponse``
models: ``processing_status`` is ``in_progress``, ``canceling`` or ``ended``; the per-outcome
``request_counts`` stay zero (all requests ``processing``) until the batch ends, as documented;
``results_url`` appears once it has ended and serves JSONL lines ``{"custom_id", "result": {"type":
"succeeded", "message"} | {"type": "errored", "error"} | {"type": "canceled"} | {"type": "expired"}}``.
Requests are validated at creation like the real API does (1 to 100,000 requests, unique
``custom_id`` of 1-64 characters ``[a-zA-Z0-9_-]``, params with ``model``, ``max_tokens`` and
``messages``, at most 256 MB); an invalid batch is refused with a 400 (413 when too large).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from fastapi import Request  # noqa: TC002  # FastAPI resolves route annotations at runtime
from fastapi.responses import JSONResponse, Response

from airflow_agent_provider.testing.batch_http import error, serve
from airflow_agent_provider.testing.batch_state import BatchItem, BatchStore, StoredBatch

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi import FastAPI

    from airflow_agent_provider.testing.server_state import ServerState

MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_OUTCOME_NAMES = {
    "succeeded": "succeeded",
    "errored": "errored",
    "expired": "expired",
    "cancelled": "canceled",
}


def _rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_requests(body: Any) -> tuple[list[BatchItem], str | None]:
    """The requests of a create body, or the message of the 400 that refuses it."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return [], "requests: must be a non-empty list"
    if len(requests) > MAX_REQUESTS:
        return [], f"requests: a batch holds at most {MAX_REQUESTS} requests"
    items: list[BatchItem] = []
    seen: set[str] = set()
    for index, request in enumerate(requests):
        custom_id = request.get("custom_id") if isinstance(request, dict) else None
        params = request.get("params") if isinstance(request, dict) else None
        if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
            return [], f"requests.{index}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$"
        if custom_id in seen:
            return [], f"requests.{index}.custom_id: {custom_id!r} is not unique within the batch"
        if not isinstance(params, dict) or any(k not in params for k in ("model", "max_tokens", "messages")):
            return [], f"requests.{index}.params: model, max_tokens and messages are required"
        seen.add(custom_id)
        items.append(BatchItem(custom_id, params))
    return items, None


def batch_object(batch: StoredBatch, base_url: str) -> dict[str, Any]:
    """A ``MessageBatch``; ``base_url`` (the server root) prefixes ``results_url``."""
    counts = batch.counts()
    ended = batch.end_status is not None
    if ended:
        status = "ended"
    else:
        status = "canceling" if batch.cancel_requested_at is not None else "in_progress"
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {
            "processing": 0 if ended else counts["total"],
            "succeeded": counts["succeeded"] if ended else 0,
            "errored": counts["errored"] if ended else 0,
            "canceled": counts["cancelled"] if ended else 0,
            "expired": counts["expired"] if ended else 0,
        },
        "ended_at": _rfc3339(batch.ended_at),
        "created_at": _rfc3339(batch.created_at),
        "expires_at": _rfc3339(batch.expires_at),
        "archived_at": None,
        "cancel_initiated_at": _rfc3339(batch.cancel_requested_at),
        "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
    }


def results_jsonl(batch: StoredBatch) -> bytes:
    """The results file of an ended batch."""
    lines = []
    for item in batch.items:
        if item.result is None:
            continue
        result: dict[str, Any] = {"type": _OUTCOME_NAMES[item.result.outcome]}
        if item.result.outcome == "succeeded":
            result["message"] = item.result.body
        elif item.result.outcome == "errored":
            result["error"] = item.result.body
        lines.append(json.dumps({"custom_id": item.custom_id, "result": result}) + "\n")
    return "".join(lines).encode()


def register_anthropic_batch_routes(app: FastAPI, state: ServerState, store: BatchStore) -> None:
    """Add the Message Batches routes (under the Anthropic base URL, the server root) to ``app``."""

    def root(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @app.post("/v1/messages/batches")
    async def create_batch(request: Request) -> Response:
        async def handle() -> Response:
            raw = await request.body()
            if len(raw) > MAX_BYTES:
                return error("anthropic", 413, f"A batch is at most {MAX_BYTES} bytes.")
            try:
                body = json.loads(raw)
            except ValueError:
                return error("anthropic", 400, "Could not parse request body.")
            items, problem = parse_requests(body)
            if problem:
                return error("anthropic", 400, problem)
            return JSONResponse(batch_object(store.create("anthropic", items), root(request)))

        return await serve(state, request, "anthropic", "/v1/messages/batches", handle)

    def batch_route(route: str, find: Callable[[str], StoredBatch | None]) -> Callable[..., Any]:
        """A route that answers with one batch object: retrieve and cancel differ only in ``find``."""

        async def route_handler(batch_id: str, request: Request) -> Response:
            async def handle() -> Response:
                batch = find(batch_id)
                if batch is None:
                    return error("anthropic", 404, "No such message batch.")
                return JSONResponse(batch_object(batch, root(request)))

            return await serve(state, request, "anthropic", route, handle)

        return route_handler

    app.get("/v1/messages/batches/{batch_id}")(
        batch_route("/v1/messages/batches/{id}", lambda batch_id: store.get(batch_id, "anthropic"))
    )
    app.post("/v1/messages/batches/{batch_id}/cancel")(
        batch_route("/v1/messages/batches/{id}/cancel", lambda batch_id: store.cancel(batch_id, "anthropic"))
    )

    @app.get("/v1/messages/batches/{batch_id}/results")
    async def batch_results(batch_id: str, request: Request) -> Response:
        async def handle() -> Response:
            batch = store.get(batch_id, "anthropic")
            if batch is None:
                return error("anthropic", 404, "No such message batch.")
            if batch.end_status is None:
                return error("anthropic", 400, "The message batch has not ended; results are not ready.")
            return Response(results_jsonl(batch), media_type="application/binary")

        return await serve(state, request, "anthropic", "/v1/messages/batches/{id}/results", handle)
