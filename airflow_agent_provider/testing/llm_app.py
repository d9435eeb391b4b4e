"""
The ASGI application of the local LLM server: the OpenAI and Anthropic routes, failure injection,
the admin routes, and the batch routes of :mod:`.batch_routes`.

What it answers is described in :mod:`airflow_agent_provider.testing.llm_server` (reply rules,
markers, usage, configuration); how it is run (in a thread, as a subprocess) lives there too.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from airflow_agent_provider.testing.batch_routes import register_batch_routes
from airflow_agent_provider.testing.scripting import (
    Conversation,
    Reply,
    decide_reply,
    parse_fail,
    parse_script,
)
from airflow_agent_provider.testing.server_state import ServerConfig, ServerState
from airflow_agent_provider.testing.wire import (
    Api,
    anthropic_body,
    anthropic_conversation,
    error_body,
    new_id,
    openai_body,
    openai_conversation,
)

USER_EXCERPT_CHARS = 120


def _api_key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key", "").strip()


def _float_header(request: Request, name: str) -> float | None:
    value = request.headers.get(name)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def _serve_completion(state: ServerState, request: Request, api: Api) -> JSONResponse:
    """Shared pipeline of both APIs: auth, latency, failure injection, reply, headers, stats."""
    request_id = new_id("req_")
    id_header = "x-request-id" if api == "openai" else "request-id"
    t_start = state.begin()
    status = 500
    conv = Conversation(model="")
    reply: Reply | None = None
    try:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
            conv = openai_conversation(body) if api == "openai" else anthropic_conversation(body)
        except (ValueError, TypeError, AttributeError) as exc:
            status = 400
            return _error(api, 400, request_id, id_header, message=f"Could not parse request body: {exc}")
        conv.answer_tool_names = tuple(state.config.answer_tools)
        script = parse_script(conv.script_source())
        key = _api_key(request)
        if not key or key == "invalid-key":
            status = 401
            return _error(api, 401, request_id, id_header)

        cfg = state.config
        delay = cfg.latency
        extra = _float_header(request, "x-llm-latency")
        delay += extra if extra is not None else (script.latency or 0.0)
        header_fail = request.headers.get("x-llm-fail")
        spec = parse_fail(header_fail, marker="header:" + header_fail) if header_fail else script.fail
        code = state.scripted_failure(spec, conv.first_user_text)
        if code is None and spec is None:
            drawn = state.random_failure()
            if drawn == "slow":
                delay += cfg.slow_seconds
            elif isinstance(drawn, int):
                code = drawn
        if delay > 0:
            await asyncio.sleep(delay)
        if code is not None:
            status = code
            headers = {"retry-after": cfg.retry_after} if code == 429 else {}
            if code == 429:
                headers.update(state.rate_limit_headers(api, 0, exhausted=True))
            return _error(api, code, request_id, id_header, headers=headers)

        reply = decide_reply(conv, script)
        payload = openai_body(conv, reply) if api == "openai" else anthropic_body(conv, reply)
        headers = state.rate_limit_headers(api, reply.input_tokens + reply.output_tokens, exhausted=False)
        headers[id_header] = request_id
        status = 200
        return JSONResponse(payload, headers=headers)
    finally:
        state.end(
            {
                "t_start": t_start,
                "t_end": time.time(),
                "path": request.url.path,
                "model": conv.model,
                "status": status,
                "user_excerpt": conv.last_user_text[:USER_EXCERPT_CHARS],
                "request_id": request_id,
                "tool_calls": [name for name, _ in reply.tool_calls] if reply else [],
                "input_tokens": reply.input_tokens if reply else 0,
                "output_tokens": reply.output_tokens if reply else 0,
            }
        )


def _error(
    api: Api,
    code: int,
    request_id: str,
    id_header: str,
    *,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    all_headers = dict(headers or {})
    all_headers[id_header] = request_id
    return JSONResponse(error_body(api, code, request_id, message), status_code=code, headers=all_headers)


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """Build the FastAPI application; its :class:`ServerState` is ``app.state.llm``."""
    app = FastAPI(title="airflow-agent-provider local LLM server", docs_url=None, redoc_url=None)
    state = ServerState(config or ServerConfig())
    app.state.llm = state
    batches = register_batch_routes(app, state)

    @app.post("/v1/chat/completions")
    @app.post("/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        return await _serve_completion(state, request, "openai")

    @app.post("/v1/messages")
    async def messages(request: Request) -> JSONResponse:
        return await _serve_completion(state, request, "anthropic")

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        api: Api = "anthropic" if request.headers.get("anthropic-version") else "openai"
        t_start = state.begin()
        status = 200
        try:
            key = _api_key(request)
            if not key or key == "invalid-key":
                status = 401
                return _error(api, 401, new_id("req_"), "x-request-id")
            created = 1_700_000_000
            data = [
                {
                    "id": name,
                    "object": "model",
                    "created": created,
                    "owned_by": "local",
                    "type": "model",
                    "display_name": name,
                    "created_at": "2023-11-14T22:13:20Z",
                }
                for name in state.config.models
            ]
            return JSONResponse(
                {
                    "object": "list",
                    "data": data,
                    "has_more": False,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                }
            )
        finally:
            state.end(
                {
                    "t_start": t_start,
                    "t_end": time.time(),
                    "path": request.url.path,
                    "model": "",
                    "status": status,
                    "user_excerpt": "",
                }
            )

    @app.get("/_admin/stats")
    async def admin_stats() -> dict[str, Any]:
        return state.stats()

    @app.post("/_admin/reset")
    async def admin_reset() -> dict[str, Any]:
        state.reset()
        batches.reset()
        return {"ok": True}

    @app.post("/_admin/config")
    async def admin_config(request: Request) -> JSONResponse:
        try:
            fields = await request.json()
            if not isinstance(fields, dict):
                raise ValueError("config must be a JSON object")
            cfg = state.configure(fields)
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True, "config": cfg.model_dump()})

    @app.get("/_admin/config")
    async def admin_get_config() -> dict[str, Any]:
        return state.config.model_dump()

    return app


__all__ = ["create_app"]
