"""
The routes of the Operations app, registered behind the access policy once it is known.

:func:`operations_router` is called by :func:`airflow_agent_provider.plugins.api.create_app` at the
first request (see there for why); every route reads the store through :class:`RouteContext`, the
few things the app resolves per request. FastAPI reads the route signatures at runtime: their
annotations name only this module's globals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from airflow_agent_provider.cost.budget import day_scope, month_scope, run_scope
from airflow_agent_provider.cost.ledger import Ledger
from airflow_agent_provider.observability.snapshots import iso_utc, pause_info, run_snapshot
from airflow_agent_provider.plugins import params, views
from airflow_agent_provider.plugins._errors import NotFound, StoreError
from airflow_agent_provider.plugins.page import CHART_JS, render_page
from airflow_agent_provider.stores.base import Store
from airflow_agent_provider.stores.budget_api import ScopeTotals

if TYPE_CHECKING:
    from airflow_agent_provider.plugins.api import Access


@dataclass(frozen=True)
class RouteContext:
    """What the routes take from the app: the store and its URL (per request), error texts, the schema."""

    store: Callable[[], Store]
    safe_url: Callable[[], str]
    describe: Callable[[Request, BaseException, str], str]
    #: What ``/api/store`` answers as "unhealthy" (503) instead of an error.
    unreachable: tuple[type[BaseException], ...]
    openapi: Callable[[], dict[str, Any]]


def _totals(scope: str, totals: ScopeTotals) -> dict[str, Any]:
    return {
        "scope": scope,
        "spent_usd": round(totals.spent, 9),
        "reserved_usd": round(totals.reserved, 9),
        "calls": totals.calls,
    }


def operations_router(policy: Access, ctx: RouteContext) -> APIRouter:
    """Every route of the app behind ``policy``."""
    store, safe_url, describe, unreachable = ctx.store, ctx.safe_url, ctx.describe, ctx.unreachable

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
        return JSONResponse(ctx.openapi())

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
        if not CHART_JS.is_file():  # an installation without package data: the page still shows its tables
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

    return router


__all__ = ["RouteContext", "operations_router"]
