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
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_agent_provider.cost.budget import day_scope, month_scope, run_scope
from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.observability.snapshots import iso_utc, pause_info, run_snapshot
from airflow_agent_provider.plugins import params, views
from airflow_agent_provider.plugins.page import CHART_JS, TITLE, render_page
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


class StoreError(Exception):
    """The store could not be opened: answered as 503 (the cause's text only to who may see it)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


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

        def store_details(request: Request, allowed: Any = Depends(policy.store_details)) -> bool:
            request.state.agent_provider_store_details = bool(allowed)
            return bool(allowed)

        # Router-level dependencies run first, in this order: no session is 401 before anything else.
        router = APIRouter(dependencies=[Depends(policy.authenticated), Depends(store_details)])
        dag_runs = [Depends(policy.dag_runs)]
        fleet = [Depends(policy.fleet)]

        @router.get("/", response_class=HTMLResponse, include_in_schema=False)
        def page() -> HTMLResponse:
            html_text, nonce = render_page()
            csp = (
                f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                "connect-src 'self'; img-src 'self' data:; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
            )
            return HTMLResponse(html_text, headers={"Content-Security-Policy": csp})

        @router.get("/api/openapi.json", include_in_schema=False)
        def openapi() -> JSONResponse:
            return JSONResponse(app.openapi())

        @router.get("/api/store", dependencies=fleet)
        def store_info(request: Request, details: bool = Depends(store_details)) -> JSONResponse:
            """Which store, where (masked; ``null`` unless the caller may read configuration), and whether it answers."""
            url = safe_url()
            kind = urlsplit(url).scheme or "unknown"
            shown = url if details else None
            try:
                s = store()
                kind = s.kind
                started = time.perf_counter()
                s.ping()
                latency_ms = round((time.perf_counter() - started) * 1000, 3)
                now = s.store_time()
            except unreachable as err:
                if isinstance(err, StoreError):
                    message = describe(request, err.cause, "cannot be opened")
                else:
                    message = describe(request, err, "is unavailable")
                return JSONResponse(
                    {"detail": message, "kind": kind, "url": shown, "healthy": False}, status_code=503
                )
            return JSONResponse(
                {
                    "kind": kind,
                    "url": shown,
                    "healthy": True,
                    "latency_ms": latency_ms,
                    "store_time": now,
                    "store_time_iso": iso_utc(now),
                }
            )

        @router.get("/api/runs/{dag_id}/{run_id}/costs", dependencies=dag_runs)
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

        @router.get("/api/runs/{dag_id}/{run_id}/snapshot", dependencies=dag_runs)
        def snapshot(dag_id: str, run_id: str) -> dict[str, Any]:
            """Costs plus the breaker state and rate-limit pauses of every model the run used."""
            params.dag_id(dag_id)
            params.run_id(run_id)
            result = run_snapshot(store(), dag_id, run_id)
            if not result["found"]:
                raise NotFound(f"no spend recorded for run {run_id!r} of DAG {dag_id!r}")
            return result

        @router.get("/api/workflows/{dag_id}/spend", dependencies=dag_runs)
        def workflow_spend(dag_id: str, day: str | None = None, month: str | None = None) -> dict[str, Any]:
            """Spend and live reservations of the DAG's day and month budget scopes (UTC, store clock)."""
            params.dag_id(dag_id)
            if day is not None:
                params.day(day)
            if month is not None:
                params.month(month)
            s = store()
            if not s.runs_list(dag_id, limit=1) and not s.ledger_runs(dag_id, limit=1):
                raise views.Unknown(
                    "dag", f"unknown DAG {dag_id!r}: the agent store has no run and no spend of it"
                )
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

        @router.get("/api/limits/{key:path}", dependencies=fleet)
        def limit(key: str) -> dict[str, Any]:
            """
            A rate-limit key: use per tier against its limits, leases held, whether callers are told to
            wait (provider feedback) and until when; 404 for a key no workflow configures and never seen.
            """
            params.limit_key(key)
            s = store()
            now = s.store_time()
            return {
                **views.limit_view(s, key, now),
                **pause_info(s, key, now),
                "store_time": now,
                "store_time_iso": iso_utc(now),
            }

        @router.get("/api/breakers/{key:path}", dependencies=fleet)
        def breaker(key: str) -> dict[str, Any]:
            """The circuit breaker state of ``key``; 404 for a key nothing configures or called; a read."""
            params.limit_key(key)
            s = store()
            now = s.store_time()
            return {**views.breaker_view(s, key), "store_time": now, "store_time_iso": iso_utc(now)}

        def readable(allowed: Any = Depends(policy.readable_dags)) -> Callable[[str], bool]:
            if allowed is None:
                return lambda _dag_id: True
            if callable(allowed):
                cache: dict[str, bool] = {}
                return lambda dag_id: (
                    cache[dag_id] if dag_id in cache else cache.setdefault(dag_id, bool(allowed(dag_id)))
                )
            return frozenset(allowed).__contains__

        @router.get("/static/chart.umd.min.js", include_in_schema=False)
        def chart_js() -> Response:
            if (
                not CHART_JS.is_file()
            ):  # an installation without package data: the page still shows its tables
                raise NotFound("the vendored Chart.js file is missing from this installation of the provider")
            return Response(
                CHART_JS.read_bytes(),
                media_type="text/javascript",
                headers={"Cache-Control": "private, max-age=86400"},
            )

        @router.get("/api/overview", dependencies=fleet)
        def fleet_overview(can_read: Callable[[str], bool] = Depends(readable)) -> dict[str, Any]:
            """
            The fleet: per-workflow spend against budgets, recent runs, top agents and models,
            30 days of daily spend, rate-limit usage per configured key, open breakers, pauses.
            Per-DAG rows only for the DAGs whose runs the caller may read.
            """
            return views.overview(store(), can_read)

        @router.get("/api/runs")
        def runs(
            dag_id: str | None = None, limit: int = 25, can_read: Callable[[str], bool] = Depends(readable)
        ) -> dict[str, Any]:
            """Recent runs (of one DAG with ``?dag_id=``), newest first: state, outcome, cost, duration."""
            if dag_id is not None:
                params.dag_id(dag_id)
            if not 1 <= limit <= 200:
                raise params.InvalidParam("limit", "must be 1-200")
            return {"runs": views.recent_runs(store(), can_read, dag_id, limit), "currency": views.CURRENCY}

        @router.get("/api/runs/{dag_id}/{run_id}", dependencies=dag_runs)
        def run_detail(dag_id: str, run_id: str) -> dict[str, Any]:
            """
            One run: per-agent cost (most expensive first) with status and reason from the run result,
            modules against their budgets, the run budget, live reservations. 404 names what is unknown.
            """
            params.dag_id(dag_id)
            params.run_id(run_id)
            return views.run_view(store(), dag_id, run_id)

        @router.get("/api/workflows/{dag_id}", dependencies=dag_runs)
        def workflow_detail(dag_id: str) -> dict[str, Any]:
            """One workflow: budgets, spend today and this month, runs, agents, models, daily spend, limits."""
            params.dag_id(dag_id)
            return views.workflow_view(store(), dag_id)

        @router.get("/api/limits", dependencies=fleet)
        def limits() -> dict[str, Any]:
            """Every rate-limit key the workflows configure: use per tier, leases held, pause, breaker."""
            s = store()
            now = s.store_time()
            records = views.known_dags(s, lambda _dag_id: True).values()
            return {
                "limits": views.limits_view(s, [r for r in records if r is not None], now),
                "store_time": now,
                "store_time_iso": iso_utc(now),
            }

        app.include_router(router)
        app.state.agent_provider_access = policy
        app.state.agent_provider_installed = True

    if isinstance(access, Access):
        install(access)
    return app


__all__ = ["Access", "AccessProvider", "NotFound", "StoreError", "create_app", "masked_store_url"]
