"""
The read-only Operations API and page, mounted by the Airflow plugin at ``/agent-provider``.

Airflow mounts a plugin's FastAPI app **without authentication**, so this app authorizes every
request itself, through an :class:`Access` policy: in the API server that is Airflow's own
auth-manager dependencies (``plugins/auth.py``: the same ``_token`` cookie and ``Authorization:
Bearer`` token as the rest of the API, the same 401/403 answers). Nothing is served to a caller
who is not signed in, the page included:

======================================  ==========================================================
Route (all ``GET``)                     Who may read it
======================================  ==========================================================
``/`` (the HTML page, ``page.py``)      any authenticated user (the page holds no data; it reads
``/api/openapi.json``                   everything through the endpoints below)
``/static/chart.umd.min.js``            (Chart.js, vendored: the page loads nothing from elsewhere)
``/api/runs``                           any authenticated user; rows only of DAGs they may read
``/api/runs/{dag_id}/{run_id}``         read access to the runs of *that* DAG
``/api/runs/{dag_id}/{run_id}/costs``   (``requires_access_dag("GET", DagAccessEntity.RUN)``)
``/api/runs/{dag_id}/{run_id}/snapshot``
``/api/workflows/{dag_id}``
``/api/workflows/{dag_id}/spend``
``/api/overview``                       the fleet view: ``requires_access_view(CLUSTER_ACTIVITY)``,
``/api/store``                          per-DAG rows of the overview only for DAGs they may read
``/api/limits``                         (store-wide state that belongs to no single DAG, like
``/api/limits/{key}``                   Airflow's own cluster-activity dashboard)
``/api/breakers/{key}``
======================================  ==========================================================

Where the store is (its masked URL, and the text of a connection error, which names host and
port) is shown only to callers who may read the provider's configuration; others see the kind,
the health and the error type.

Endpoints (errors are ``{"detail": "..."}``):

- ``/api/store``: kind, masked URL (or ``null``), health (``ping``) and store clock; 503 when unreachable;
- ``/api/runs/{dag_id}/{run_id}/costs``: the ledger summary (total, per module, per agent) and the
  run scope's live reservations; 404 when the run has no spend at all;
- ``/api/runs/{dag_id}/{run_id}/snapshot``: :func:`~airflow_agent_provider.observability.snapshots.run_snapshot`;
- ``/api/workflows/{dag_id}/spend``: spend and reservations of the DAG's UTC day and month scopes
  (``?day=YYYY-MM-DD&month=YYYY-MM``, default: the store clock's today);
- ``/api/overview``, ``/api/workflows/{dag_id}``, ``/api/runs/{dag_id}/{run_id}``: the three views
  of the page (``views.py``); ``/api/runs``: recent runs;
- ``/api/limits``: every configured rate-limit key's use per tier, leases, pause and breaker;
- ``/api/limits/{key}``: the same for one key, and whether it is paused and until when;
- ``/api/breakers/{key}``: a circuit breaker's state.

Honest states: an unknown DAG, run or key is 404 with ``{"detail", "unknown": "dag"|"run"|"key"}``
(never $0 or "closed"); a workflow without a run record has ``budgets.known: false``.

401 is no (or an expired) session, 403 a user without the permission above (or an invalid
token), 422 a value that fails its check (``params.py``), 503 a store that cannot be reached or
opened. Every route only reads: no store method that writes is called by any of them.
"""

from __future__ import annotations

import html
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_agent_provider.plugins import params, views
from airflow_agent_provider.plugins._errors import NotFound, StoreError
from airflow_agent_provider.plugins.page import TITLE
from airflow_agent_provider.plugins.routes import RouteContext, operations_router
from airflow_agent_provider.stores.base import Store, StoreUnavailable
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


def _no_login_url(_: Request) -> str | None:
    return None


def _no_dags() -> frozenset[str]:
    return frozenset()


@dataclass(frozen=True)
class Access:
    """
    Who may read what. Each field but ``login_url`` is a FastAPI dependency that refuses a request
    by raising ``HTTPException`` (401: not signed in, 403: not allowed).

    - ``authenticated``: any signed-in user; guards every route, the page included;
    - ``dag_runs``: may read the runs of the DAG named by the route's ``dag_id`` path parameter;
    - ``fleet``: may read store-wide state (store health, rate-limit pauses, circuit breakers);
    - ``store_details``: *returns* whether the caller may see where the store is (its URL and the
      text of connection errors), never refuses;
    - ``login_url``: where a browser without a session signs in (``None``: no link offered);
    - ``readable_dags``: *returns* which DAGs' runs the caller may read: a set of DAG ids, a
      predicate ``dag_id -> bool`` (asked once per DAG and request) or ``None`` (every DAG);
      fleet-wide lists (overview, recent runs) show only those DAGs' rows. The default reads none.

    The API server uses :func:`airflow_agent_provider.plugins.auth.airflow_access` (Airflow's own
    auth manager); there is deliberately no "allow everyone" policy in the package.
    """

    authenticated: Callable[..., Any]
    dag_runs: Callable[..., Any]
    fleet: Callable[..., Any]
    store_details: Callable[..., Any]
    login_url: Callable[[Request], str | None] = _no_login_url
    readable_dags: Callable[..., Any] = _no_dags


AccessProvider = Callable[[], Access]


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


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the store is unreachable", not "this code is wrong"."""
    errors: list[type[BaseException]] = [
        StoreUnavailable,
        sqlite3.OperationalError,
        sqlite3.DatabaseError,
        ConnectionError,
        TimeoutError,
        OSError,
    ]
    try:
        import redis.exceptions

        errors += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover - redis-py is a dependency
        pass
    return tuple(errors)


def _airflow_access() -> Access:
    """Airflow's auth manager; imported on first use so that loading the plugin stays cheap."""
    from airflow_agent_provider.plugins.auth import airflow_access

    return airflow_access()


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _refusal_page(status_code: int, login_url: str | None) -> str:
    """The page a browser gets instead of data: a sign-in link (401) or a plain refusal (403)."""
    if status_code == 401:
        message = "You are not signed in to Airflow, or your session has expired."
        if login_url:
            message += f' <a href="{html.escape(login_url, quote=True)}" target="_top">Sign in</a>.'
    else:
        message = "Your Airflow user is not allowed to see this."
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(TITLE)}</title></head>'
        f"<body><h1>{html.escape(TITLE)}</h1><p>{message}</p></body></html>"
    )


def create_app(
    store_provider: StoreProvider | None = None,
    url_provider: UrlProvider | None = None,
    access: Access | AccessProvider | None = None,
) -> FastAPI:
    """
    The Operations app. ``store_provider``/``url_provider`` default to the Airflow-configured store
    (``hooks.store.get_store``/``resolve_store_url``), resolved per request so a store that was down
    when the API server started is picked up once it is back.

    ``access`` is the authorization policy, or a function that builds it; the default is Airflow's
    auth manager. A function is called at the first request (Airflow's security module is only
    imported by the API server, not by every process that loads the plugin); until then, and if it
    fails, no route exists and nothing is served.
    """
    get_store = store_provider or _default_store
    get_url = url_provider or _default_url
    transient = _transient_errors()
    #: What ``/api/store`` answers as "unhealthy" (503) instead of an error.
    unreachable: tuple[type[BaseException], ...] = (StoreError, *transient)

    app = FastAPI(
        title="LLM agents: costs & limits",
        description=(
            "Read-only view of the agent provider's shared store (budgets, ledger, limits, breakers). "
            "Every endpoint needs an Airflow session (the UI's `_token` cookie) or an "
            "`Authorization: Bearer` token from `POST /auth/token`."
        ),
        # The Swagger page loads assets from a CDN; the OpenAPI JSON is served by an authenticated
        # route of its own (FastAPI's built-in one would answer anybody).
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.agent_provider_installed = False
    install_lock = threading.Lock()

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
        except Exception:
            password = None
        return text.replace(password, "***") if password else text

    def describe(request: Request, err: BaseException, what: str) -> str:
        """The 503 text: the error's own message (it names host and port) only to who may see it."""
        if getattr(request.state, "agent_provider_store_details", False):
            return f"the agent provider store {what} ({type(err).__name__}: {scrub(str(err))[:300]})"
        return f"the agent provider store {what} ({type(err).__name__}); see the API server log"

    def store() -> Store:
        try:
            return get_store()
        except Exception as err:
            log.warning("agent provider: cannot open the store", exc_info=True)
            raise StoreError(err) from err

    # -- error answers ------------------------------------------------------------------------

    @app.exception_handler(params.InvalidParam)
    async def _invalid(_: Request, exc: params.InvalidParam) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422, headers=_SECURITY_HEADERS)

    @app.exception_handler(views.Unknown)
    async def _unknown(_: Request, exc: views.Unknown) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "unknown": exc.what}, status_code=404, headers=_SECURITY_HEADERS
        )

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404, headers=_SECURITY_HEADERS)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(
            {"detail": describe(request, exc.cause, "cannot be opened")},
            status_code=503,
            headers=_SECURITY_HEADERS,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = {**(exc.headers or {}), **_SECURITY_HEADERS}
        if exc.status_code in (401, 403) and _wants_html(request):
            login = None
            if exc.status_code == 401 and request.app.state.agent_provider_installed:
                try:
                    login = request.app.state.agent_provider_access.login_url(request)
                except Exception:
                    log.warning("agent provider: no login URL", exc_info=True)
            headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'self'; base-uri 'none'"
            return HTMLResponse(
                _refusal_page(exc.status_code, login), status_code=exc.status_code, headers=headers
            )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.middleware("http")
    async def _guard(request: Request, call_next: Callable[[Request], Any]) -> Any:
        try:
            if not app.state.agent_provider_installed:
                with install_lock:
                    if not app.state.agent_provider_installed:
                        install(access() if callable(access) else _airflow_access())
        except Exception:
            log.exception("agent provider: cannot set up Airflow authentication; the plugin serves nothing")
            return JSONResponse(
                {
                    "detail": "the agent provider plugin cannot check Airflow authentication; see the API server log"
                },
                status_code=500,
                headers=_SECURITY_HEADERS,
            )
        try:
            response = await call_next(request)
        except transient as err:
            log.warning("agent provider: store unavailable during %s", request.url.path, exc_info=True)
            return JSONResponse(
                {"detail": describe(request, err, "is unavailable")},
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

    def install(policy: Access) -> None:
        """Register every route behind ``policy``; no route exists before this."""
        ctx = RouteContext(
            store=store, safe_url=safe_url, describe=describe, unreachable=unreachable, openapi=app.openapi
        )
        app.include_router(operations_router(policy, ctx))
        app.state.agent_provider_access = policy
        app.state.agent_provider_installed = True

    if isinstance(access, Access):
        install(access)
    return app


__all__ = ["Access", "AccessProvider", "NotFound", "StoreError", "create_app", "masked_store_url"]
