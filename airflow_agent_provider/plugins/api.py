"""The read-only Operations API and page, mounted by the Airflow plugin at ``/agent-provider``.

Airflow mounts a plugin's FastAPI app **without authentication**, so this app only reads, and
never returns anything secret: no connection fields, and the store URL only through
:func:`masked_store_url`. Every number comes from the shared store (``get_store()``), the same one
the workers and triggerers write, so the page shows what the budgets and limiters actually see.

Endpoints (all ``GET``; errors are ``{"detail": "..."}``):

- ``/``: the HTML page (``page.py``);
- ``/api/store``: kind, masked URL, health (``ping``) and store clock; 503 when unreachable;
- ``/api/runs/{dag_id}/{run_id}/costs``: the ledger summary (total, per module, per agent) and the
  run scope's live reservations; 404 when the run has no spend at all;
- ``/api/runs/{dag_id}/{run_id}/snapshot``: :func:`~airflow_agent_provider.observability.snapshots.run_snapshot`;
- ``/api/workflows/{dag_id}/spend``: spend and reservations of the DAG's UTC day and month scopes
  (``?day=YYYY-MM-DD&month=YYYY-MM``, default: the store clock's today);
- ``/api/limits/{key}``: whether a rate-limit key is paused and until when;
- ``/api/breakers/{key}``: a circuit breaker's state.

422 is a value that fails its check (``params.py``), 503 a store that cannot be reached or opened.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from airflow_agent_provider.cost.budget import day_scope, month_scope, run_scope
from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.observability.snapshots import iso_utc, pause_info, run_snapshot
from airflow_agent_provider.plugins import params
from airflow_agent_provider.plugins.page import render_page
from airflow_agent_provider.stores.base import Store, StoreUnavailable
from airflow_agent_provider.stores.budget_api import ScopeTotals
from airflow_agent_provider.stores.config import mask_url

log = logging.getLogger(__name__)

StoreProvider = Callable[[], Store]
UrlProvider = Callable[[], str]

_SECRET_QUERY_WORDS = ("pass", "secret", "token", "key", "auth")

#: Sent with every answer: nothing here may be cached by a proxy, sniffed or framed by another site.
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class StoreError(Exception):
    """The store could not be opened or reached: answered as 503 with a message safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(Exception):
    """Nothing recorded for what was asked: answered as 404."""


def masked_store_url(url: str) -> str:
    """``mask_url`` plus query parameters that look like credentials (``?password=...``) masked."""
    masked = mask_url(url)
    parts = urlsplit(masked)
    if not parts.query:
        return masked
    query = [
        (name, "***" if any(word in name.lower() for word in _SECRET_QUERY_WORDS) else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*:")))


def _default_store() -> Store:
    from airflow_agent_provider.hooks.store import get_store

    return get_store()


def _default_url() -> str:
    from airflow_agent_provider.hooks.store import resolve_store_url

    return resolve_store_url()


def _totals(scope: str, totals: ScopeTotals) -> dict[str, Any]:
    return {
        "scope": scope,
        "spent_usd": round(totals.spent, 9),
        "reserved_usd": round(totals.reserved, 9),
        "calls": totals.calls,
    }


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the store is unreachable", not "this code is wrong"."""
    errors: list[type[BaseException]] = [StoreUnavailable, sqlite3.OperationalError, sqlite3.DatabaseError,
                                         ConnectionError, TimeoutError, OSError]
    try:
        import redis.exceptions

        errors += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover - redis-py is a dependency
        pass
    return tuple(errors)


def create_app(store_provider: StoreProvider | None = None, url_provider: UrlProvider | None = None) -> FastAPI:
    """
    The Operations app. ``store_provider``/``url_provider`` default to the Airflow-configured store
    (``hooks.store.get_store``/``resolve_store_url``), resolved per request so a store that was down
    when the API server started is picked up once it is back.
    """
    get_store = store_provider or _default_store
    get_url = url_provider or _default_url
    transient = _transient_errors()

    app = FastAPI(
        title="LLM agents: costs & limits",
        description="Read-only view of the agent provider's shared store (budgets, ledger, limits, breakers).",
        docs_url=None,  # the Swagger page loads assets from a CDN; the OpenAPI JSON is enough
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )

    def safe_url() -> str:
        try:
            return masked_store_url(get_url())
        except Exception:  # the URL itself may need a connection that cannot be read
            log.warning("agent provider: could not resolve the store URL", exc_info=True)
            return "unknown"

    def scrub(text: str) -> str:
        """Take any password of the store URL out of an error message."""
        try:
            password = urlsplit(get_url()).password
        except Exception:  # noqa: BLE001 - no URL, no password to hide; the error being reported matters more
            password = None
        return text.replace(password, "***") if password else text

    def store() -> Store:
        try:
            return get_store()
        except Exception as err:
            log.warning("agent provider: cannot open the store", exc_info=True)
            raise StoreError(
                f"the agent provider store cannot be opened ({type(err).__name__}: {scrub(str(err))[:300]})"
            ) from err

    # -- error answers ------------------------------------------------------------------------

    @app.exception_handler(params.InvalidParam)
    async def _invalid(_: Request, exc: params.InvalidParam) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422, headers=_SECURITY_HEADERS)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404, headers=_SECURITY_HEADERS)

    @app.exception_handler(StoreError)
    async def _store_error(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=503, headers=_SECURITY_HEADERS)

    @app.middleware("http")
    async def _guard(request: Request, call_next: Callable[[Request], Any]) -> Any:
        try:
            response = await call_next(request)
        except transient as err:
            log.warning("agent provider: store unavailable during %s", request.url.path, exc_info=True)
            return JSONResponse(
                {"detail": f"the agent provider store is unavailable ({type(err).__name__}: {scrub(str(err))[:300]})"},
                status_code=503,
                headers=_SECURITY_HEADERS,
            )
        except Exception:
            log.exception("agent provider: error answering %s", request.url.path)
            return JSONResponse(
                {"detail": "internal error in the agent provider plugin; see the API server log"},
                status_code=500,
                headers=_SECURITY_HEADERS,
            )
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    # -- endpoints ----------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        html, nonce = render_page()
        csp = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self' data:; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
        )
        return HTMLResponse(html, headers={"Content-Security-Policy": csp})

    @app.get("/api/store")
    def store_info() -> JSONResponse:
        """Which store, where (masked), and whether it answers."""
        url = safe_url()
        kind = urlsplit(url).scheme or "unknown"
        try:
            s = store()
            kind = s.kind
            started = time.perf_counter()
            s.ping()
            latency_ms = round((time.perf_counter() - started) * 1000, 3)
            now = s.store_time()
        except (StoreError, *transient) as err:
            message = err.message if isinstance(err, StoreError) else (
                f"the agent provider store is unavailable ({type(err).__name__}: {scrub(str(err))[:300]})"
            )
            return JSONResponse({"detail": message, "kind": kind, "url": url, "healthy": False}, status_code=503)
        return JSONResponse(
            {"kind": kind, "url": url, "healthy": True, "latency_ms": latency_ms,
             "store_time": now, "store_time_iso": iso_utc(now)}
        )

    @app.get("/api/runs/{dag_id}/{run_id}/costs")
    def run_costs(dag_id: str, run_id: str) -> dict[str, Any]:
        """The ledger summary of one run (calls, tokens, USD per module and agent) and live reservations."""
        params.dag_id(dag_id)
        params.run_id(run_id)
        s = store()
        summary = Ledger(s).run_summary(dag_id, run_id)
        scope = run_scope(dag_id, run_id)
        totals = s.budget_totals(scope)
        if not summary.entries and totals.calls == 0 and totals.reserved == 0:
            raise NotFound(f"no spend recorded for run {run_id!r} of DAG {dag_id!r}")
        return {**summary.to_dict(), "run_scope": _totals(scope, totals)}

    @app.get("/api/runs/{dag_id}/{run_id}/snapshot")
    def snapshot(dag_id: str, run_id: str) -> dict[str, Any]:
        """Costs plus the breaker state and rate-limit pauses of every model the run used."""
        params.dag_id(dag_id)
        params.run_id(run_id)
        result = run_snapshot(store(), dag_id, run_id)
        if not result["found"]:
            raise NotFound(f"no spend recorded for run {run_id!r} of DAG {dag_id!r}")
        return result

    @app.get("/api/workflows/{dag_id}/spend")
    def workflow_spend(dag_id: str, day: str | None = None, month: str | None = None) -> dict[str, Any]:
        """Spend and live reservations of the DAG's day and month budget scopes (UTC, store clock)."""
        params.dag_id(dag_id)
        if day is not None:
            params.day(day)
        if month is not None:
            params.month(month)
        s = store()
        now = s.store_time()
        today = datetime.fromtimestamp(now, tz=timezone.utc)
        day = day or today.strftime("%Y-%m-%d")
        month = month or today.strftime("%Y-%m")
        day_key, month_key = day_scope(dag_id, day), month_scope(dag_id, month)
        return {
            "dag_id": dag_id,
            "store_time": now,
            "store_time_iso": iso_utc(now),
            "day": {"period": day, **_totals(day_key, s.budget_totals(day_key))},
            "month": {"period": month, **_totals(month_key, s.budget_totals(month_key))},
        }

    @app.get("/api/limits/{key:path}")
    def limit(key: str) -> dict[str, Any]:
        """Whether every caller of rate-limit ``key`` is told to wait (provider feedback), and until when."""
        params.limit_key(key)
        s = store()
        now = s.store_time()
        return {**pause_info(s, key, now), "store_time": now, "store_time_iso": iso_utc(now)}

    @app.get("/api/breakers/{key:path}")
    def breaker(key: str) -> dict[str, Any]:
        """The circuit breaker state of ``key`` (``closed`` for a key never seen)."""
        params.limit_key(key)
        s = store()
        now = s.store_time()
        return {"key": key, "state": s.breaker_state(key), "store_time": now, "store_time_iso": iso_utc(now)}

    return app


__all__ = ["NotFound", "StoreError", "create_app", "masked_store_url"]
