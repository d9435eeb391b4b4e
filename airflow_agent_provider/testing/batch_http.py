"""
What every batch route of the local server does around its own work: authentication, errors in the
API's own format, and an entry in the server's statistics.

Each batch HTTP call is recorded in ``/_admin/stats`` under its route template (e.g.
``/v1/batches/{id}``), so a test or benchmark can count the provider API calls a batch run made
next to the real-time ones. The requests answered inside a batch are not HTTP calls and are
counted in ``/_admin/batch/stats`` instead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse, Response

from airflow_agent_provider.testing.wire import Api, error_body, new_id

if TYPE_CHECKING:
    from fastapi import Request

    from airflow_agent_provider.testing.server_state import ServerState


def api_key(request: Request) -> str:
    """The key of ``Authorization: Bearer`` or ``x-api-key`` (never logged or stored)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key", "").strip()


def error(api: Api, code: int, message: str | None = None) -> JSONResponse:
    """An error response in the real format of ``api``."""
    request_id = new_id("req_")
    id_header = "x-request-id" if api == "openai" else "request-id"
    return JSONResponse(
        error_body(api, code, request_id, message), status_code=code, headers={id_header: request_id}
    )


async def serve(
    state: ServerState,
    request: Request,
    api: Api,
    route: str,
    handler: Callable[[], Awaitable[Response]],
    model: str = "",
) -> Response:
    """Authenticate, run ``handler`` and record the call; a missing or ``invalid-key`` key is a 401."""
    t_start = state.begin()
    status = 500
    try:
        key = api_key(request)
        if not key or key == "invalid-key":
            status = 401
            return error(api, 401)
        response = await handler()
        status = response.status_code
        return response
    finally:
        state.end(
            {
                "t_start": t_start,
                "t_end": time.time(),
                "path": route,
                "model": model,
                "status": status,
                "user_excerpt": "",
            }
        )
