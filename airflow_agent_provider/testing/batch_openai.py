"""
The OpenAI Batch API of the local server: Files upload/download and batch create/retrieve/list/cancel.

Shapes follow the ``openai`` SDK's ``FileObject`` and ``Batch`` models and the documented JSONL
formats: an input line is ``{"custom_id", "method": "POST", "url", "body"}``; an output or error line
is ``{"id", "custom_id", "response": {"status_code", "request_id", "body"} | null, "error": null |
{"code", "message"}}``. Succeeded requests go to the output file, errored ones (non-200 answers) and
the requests a batch never ran (``batch_expired``, ``batch_cancelled``) to the error file, as the
real service does. A file that is not valid (bad JSON, duplicate ``custom_id``, wrong ``url``, more
than one model, over 50,000 requests or 200 MB) makes the batch ``failed`` with ``errors``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import Request  # noqa: TC002  # FastAPI resolves route annotations at runtime
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from airflow_agent_provider.testing.batch_http import error, serve
from airflow_agent_provider.testing.batch_state import BatchItem, BatchStore, StoredBatch, StoredFile
from airflow_agent_provider.testing.wire import new_id

if TYPE_CHECKING:
    from fastapi import FastAPI

    from airflow_agent_provider.testing.server_state import ServerState

#: The endpoints the local server can answer inside a batch.
ENDPOINTS = ("/v1/chat/completions",)
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024

_NOT_RUN = {
    "expired": ("batch_expired", "This request could not be executed before the completion window expired."),
    "cancelled": ("batch_cancelled", "This request was not executed because the batch was cancelled."),
}


def file_object(stored: StoredFile) -> dict[str, Any]:
    """A ``FileObject``."""
    return {
        "id": stored.id,
        "object": "file",
        "bytes": len(stored.content),
        "created_at": stored.created_at,
        "filename": stored.filename,
        "purpose": stored.purpose,
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }


def parse_input(content: bytes, endpoint: str) -> tuple[list[BatchItem], list[dict[str, Any]]]:
    """The requests of an input file, or the validation errors that fail its batch."""
    errors: list[dict[str, Any]] = []

    def fail(code: str, message: str, line: int | None = None, param: str | None = None) -> None:
        errors.append({"code": code, "message": message, "line": line, "param": param})

    if len(content) > MAX_BYTES:
        fail("file_too_large", f"The input file is larger than {MAX_BYTES} bytes.")
        return [], errors
    items: list[BatchItem] = []
    seen: set[str] = set()
    for number, raw in enumerate(content.decode("utf-8", "replace").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            fail("invalid_json_line", "This line is not parseable as valid JSON.", number)
            continue
        body = line.get("body") if isinstance(line, dict) else None
        custom_id = line.get("custom_id") if isinstance(line, dict) else None
        if not isinstance(custom_id, str) or not custom_id:
            fail("missing_required_parameter", "Missing custom_id.", number, "custom_id")
        elif custom_id in seen:
            fail("duplicate_custom_id", f"The custom_id {custom_id!r} is not unique.", number, "custom_id")
        elif line.get("method") != "POST" or line.get("url") != endpoint:
            fail("invalid_url", f"The url must be {endpoint} and the method POST.", number, "url")
        elif not isinstance(body, dict) or not body.get("model"):
            fail("missing_required_parameter", "The body must be an object with a model.", number, "body")
        else:
            seen.add(custom_id)
            items.append(BatchItem(custom_id, body))
    if not items and not errors:
        fail("empty_file", "The input file has no requests.")
    if len(items) > MAX_REQUESTS:
        fail("too_many_requests", f"A batch holds at most {MAX_REQUESTS} requests.")
    if len({item.body["model"] for item in items}) > 1:
        fail("mismatched_model", "All requests of a batch must use the same model.", param="model")
    return items, errors


def batch_object(batch: StoredBatch, *, validating: bool = False) -> dict[str, Any]:
    """A ``Batch``; ``validating`` for the answer to create, as the real service gives."""
    counts = batch.counts()
    created = int(batch.created_at)
    ended = int(batch.ended_at) if batch.ended_at is not None else None
    cancelling = int(batch.cancel_requested_at) if batch.cancel_requested_at is not None else None
    if batch.end_status is not None:
        status: str = batch.end_status
    elif validating:
        status = "validating"
    else:
        status = "cancelling" if cancelling is not None else "in_progress"
    succeeded = [i.result.body for i in batch.items if i.result and i.result.outcome == "succeeded"]
    usages = [b.get("usage") or {} for b in succeeded if b]
    input_tokens = sum(int(u.get("prompt_tokens", 0)) for u in usages)
    output_tokens = sum(int(u.get("completion_tokens", 0)) for u in usages)
    cached = sum(int((u.get("prompt_tokens_details") or {}).get("cached_tokens", 0)) for u in usages)
    running = status not in ("validating", "failed")
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "model": batch.models[0] if batch.models else None,
        "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
        "input_file_id": batch.input_file_id,
        "completion_window": "24h",
        "status": status,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "created_at": created,
        "in_progress_at": created if running else None,
        "expires_at": int(batch.expires_at),
        "finalizing_at": ended if status == "completed" else None,
        "completed_at": ended if status == "completed" else None,
        "failed_at": ended if status == "failed" else None,
        "expired_at": ended if status == "expired" else None,
        "cancelling_at": cancelling,
        "cancelled_at": ended if status == "cancelled" else None,
        "request_counts": {
            "total": counts["total"],
            "completed": counts["succeeded"],
            "failed": counts["errored"],
        },
        "metadata": batch.metadata,
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    }


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def write_result_files(store: BatchStore, batch: StoredBatch) -> None:
    """Create the output and error files of an ended batch (each only when it has lines)."""
    output: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for item in batch.items:
        result = item.result
        if result is None:
            continue
        line: dict[str, Any] = {"id": new_id("batch_req_"), "custom_id": item.custom_id}
        if result.outcome in _NOT_RUN:
            code, message = _NOT_RUN[result.outcome]
            errors.append(line | {"response": None, "error": {"code": code, "message": message}})
            continue
        response = {"status_code": result.status_code, "request_id": result.request_id, "body": result.body}
        (output if result.outcome == "succeeded" else errors).append(
            line | {"response": response, "error": None}
        )
    if output:
        batch.output_file_id = store.add_file(f"{batch.id}_output.jsonl", "batch_output", _jsonl(output)).id
    if errors:
        batch.error_file_id = store.add_file(f"{batch.id}_error.jsonl", "batch_output", _jsonl(errors)).id


def register_openai_batch_routes(app: FastAPI, state: ServerState, store: BatchStore) -> None:
    """Add the Files and Batches routes (under ``/v1``, the OpenAI base URL) to ``app``."""

    @app.post("/v1/files")
    async def create_file(request: Request) -> Response:
        async def handle() -> Response:
            form = await request.form()
            upload, purpose = form.get("file"), form.get("purpose")
            if not isinstance(upload, UploadFile) or not isinstance(purpose, str):
                return error("openai", 400, "file and purpose are required (multipart/form-data).")
            stored = store.add_file(upload.filename or "upload.jsonl", purpose, await upload.read())
            return JSONResponse(file_object(stored))

        return await serve(state, request, "openai", "/v1/files", handle)

    @app.get("/v1/files/{file_id}")
    async def retrieve_file(file_id: str, request: Request) -> Response:
        async def handle() -> Response:
            stored = store.file(file_id)
            return JSONResponse(file_object(stored)) if stored else error("openai", 404, "No such file.")

        return await serve(state, request, "openai", "/v1/files/{id}", handle)

    @app.get("/v1/files/{file_id}/content")
    async def file_content(file_id: str, request: Request) -> Response:
        async def handle() -> Response:
            stored = store.file(file_id)
            if stored is None:
                return error("openai", 404, "No such file.")
            return Response(stored.content, media_type="application/octet-stream")

        return await serve(state, request, "openai", "/v1/files/{id}/content", handle)

    @app.post("/v1/batches")
    async def create_batch(request: Request) -> Response:
        async def handle() -> Response:
            try:
                body = await request.json()
            except ValueError:
                return error("openai", 400, "Could not parse request body.")
            if not isinstance(body, dict):
                return error("openai", 400, "The body must be a JSON object.")
            endpoint = body.get("endpoint")
            if endpoint not in ENDPOINTS:
                return error("openai", 400, f"endpoint must be one of {list(ENDPOINTS)}.")
            if body.get("completion_window") != "24h":
                return error("openai", 400, "completion_window must be '24h'.")
            stored = store.file(str(body.get("input_file_id", "")))
            if stored is None or stored.purpose != "batch":
                return error("openai", 400, "input_file_id must name a file uploaded with purpose 'batch'.")
            items, errors = parse_input(stored.content, str(endpoint))
            batch = store.create(
                "openai",
                [] if errors else items,
                endpoint=str(endpoint),
                input_file_id=stored.id,
                metadata=body.get("metadata"),
                errors=errors,
            )
            return JSONResponse(batch_object(batch, validating=not errors))

        return await serve(state, request, "openai", "/v1/batches", handle)

    @app.get("/v1/batches")
    async def list_batches(request: Request, limit: int = 20, after: str | None = None) -> Response:
        async def handle() -> Response:
            size = max(1, min(limit, 100))
            batches = store.list_batches("openai", size + 1, after)
            page, more = batches[:size], len(batches) > size
            data = [batch_object(b) for b in page]
            return JSONResponse(
                {
                    "object": "list",
                    "data": data,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                    "has_more": more,
                }
            )

        return await serve(state, request, "openai", "/v1/batches", handle)

    @app.get("/v1/batches/{batch_id}")
    async def retrieve_batch(batch_id: str, request: Request) -> Response:
        async def handle() -> Response:
            batch = store.get(batch_id, "openai")
            return JSONResponse(batch_object(batch)) if batch else error("openai", 404, "No such batch.")

        return await serve(state, request, "openai", "/v1/batches/{id}", handle)

    @app.post("/v1/batches/{batch_id}/cancel")
    async def cancel_batch(batch_id: str, request: Request) -> Response:
        async def handle() -> Response:
            batch = store.cancel(batch_id, "openai")
            return JSONResponse(batch_object(batch)) if batch else error("openai", 404, "No such batch.")

        return await serve(state, request, "openai", "/v1/batches/{id}/cancel", handle)
