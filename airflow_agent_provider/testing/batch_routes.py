"""
Wiring of the two batch APIs into the local LLM server, their admin routes and admin client calls.

``create_app`` calls :func:`register_batch_routes` once; the store it returns is
``app.state.batches`` and is cleared by ``POST /_admin/reset`` with the rest of the server.
Admin routes: ``GET/POST /_admin/batch/config`` (:class:`BatchConfig` fields) and
``GET /_admin/batch/stats`` (batches created per provider and model, one summary per batch) and
``POST /_admin/batch/advance`` (``{"seconds": n}``: move the batch clock forward).
"""

from __future__ import annotations

import json
import urllib.request
from typing import TYPE_CHECKING, Any, cast

from fastapi import Request  # noqa: TC002  # FastAPI resolves route annotations at runtime
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from airflow_agent_provider.testing.batch_anthropic import register_anthropic_batch_routes
from airflow_agent_provider.testing.batch_openai import register_openai_batch_routes, write_result_files
from airflow_agent_provider.testing.batch_replies import answerer
from airflow_agent_provider.testing.batch_state import BatchStore, StoredBatch

if TYPE_CHECKING:
    from fastapi import FastAPI

    from airflow_agent_provider.testing.server_state import ServerState


def _on_end(store: BatchStore, batch: StoredBatch) -> None:
    if batch.api == "openai":
        write_result_files(store, batch)


def register_batch_routes(app: FastAPI, state: ServerState) -> BatchStore:
    """Add both batch APIs and their admin routes to ``app``; returns the batch store."""
    store = BatchStore(answerer(state), on_end=_on_end)
    app.state.batches = store
    register_openai_batch_routes(app, state, store)
    register_anthropic_batch_routes(app, state, store)

    @app.get("/_admin/batch/stats")
    async def batch_stats() -> dict[str, Any]:
        return store.stats()

    @app.get("/_admin/batch/config")
    async def batch_get_config() -> dict[str, Any]:
        return store.config.model_dump()

    @app.post("/_admin/batch/config")
    async def batch_config(request: Request) -> JSONResponse:
        try:
            fields = await request.json()
            if not isinstance(fields, dict):
                raise ValueError("config must be a JSON object")
            cfg = store.configure(fields)
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True, "config": cfg.model_dump()})

    @app.post("/_admin/batch/advance")
    async def batch_advance(request: Request) -> JSONResponse:
        fields = await request.json()
        seconds = fields.get("seconds") if isinstance(fields, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < 1e9:
            error = 'expected {"seconds": <number of seconds, 0 or more>}'
            return JSONResponse({"ok": False, "error": error}, status_code=400)
        return JSONResponse({"ok": True, "now": store.advance_clock(float(seconds))})

    return store


class BatchAdminClient:
    """Batch admin calls over HTTP, mixed into the server handles (in-process or spawned)."""

    url: str

    def _batch_admin(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def batch_configure(self, **fields: Any) -> dict[str, Any]:
        """Update :class:`BatchConfig` fields for batches created from now on; returns the new config."""
        return cast("dict[str, Any]", self._batch_admin("POST", "/_admin/batch/config", fields)["config"])

    def batch_advance(self, seconds: float) -> float:
        """Move the server's batch clock ``seconds`` forward (a processing delay or expiry without sleeping)."""
        return cast("float", self._batch_admin("POST", "/_admin/batch/advance", {"seconds": seconds})["now"])

    def batch_stats(self) -> dict[str, Any]:
        """``created`` (provider -> model -> batches), ``batches`` (summaries), ``answered_requests``."""
        return cast("dict[str, Any]", self._batch_admin("GET", "/_admin/batch/stats"))

    def batches_created(self, provider: str, model: str | None = None) -> int:
        """Batches created for ``provider`` (and ``model``, when given) since the last reset."""
        per_model: dict[str, int] = self.batch_stats()["created"].get(provider, {})
        return per_model.get(model, 0) if model is not None else sum(per_model.values())
