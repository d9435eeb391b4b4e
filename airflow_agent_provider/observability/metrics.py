"""
Metrics for guarded model calls, through Airflow's ``Stats`` when it is there, else nothing.

Why a facade: the engines (``guard``, ``cost``, ``limits``, ``resilience``) are Airflow-free and are
used by the CLI and tests without Airflow configured. ``airflow.sdk.observability.stats`` is imported
lazily on the first metric, never when this module is imported, and any failure to import or send
turns the facade into a no-op: a metric must never fail a model call that was paid for.

Names (all under ``agent_provider.``; Airflow's ``[metrics] statsd_prefix``, ``airflow`` by
default, is put in front by the statsd client):

==========================================  =======  ====================================================
``agent_provider.calls``                    counter  one logical guarded call; tags provider, model, outcome
``agent_provider.tokens.input``/``.output`` counter  tokens of the call; tags provider, model
``agent_provider.cost_usd``                 counter  cost in **micro-dollars** (1e-6 USD); tags provider, model
``agent_provider.cost_unknown``             counter  calls whose price was unknown (not counted as $0)
``agent_provider.rate_limit.wait_ms``       timer    time spent waiting for rate-limit permits
``agent_provider.retries``                  counter  requests beyond the first (retries) of a call
``agent_provider.budget.refused``           counter  calls refused by a budget; tag scope (agent, run, day, ...)
``agent_provider.breaker.open``             counter  calls refused by an open breaker; tags provider, model
==========================================  =======  ====================================================

Plain statsd drops tags (Airflow sends them only to Datadog, OpenTelemetry or with
``statsd_influxdb_enabled``), so each metric that has dimensions is also sent under a dimensioned
name, e.g. ``agent_provider.calls.openai.gpt-5-mini.ok``; dots and other characters a statsd name
cannot hold inside one segment become ``_`` (``claude-3.5`` -> ``claude-3_5``).

Airflow's task runner initialises ``Stats`` from ``[metrics]``; a process that did not (the
triggerer's runner, a CLI, a test) is initialised here the same way, once.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Mapping
from typing import Any, Protocol

log = logging.getLogger(__name__)

PREFIX = "agent_provider"

#: Outcomes of ``record_call``.
OUTCOME_OK = "ok"
OUTCOME_ERROR = "error"

_SEGMENT_BAD = re.compile(r"[^A-Za-z0-9_-]")
_MAX_SEGMENT = 64

_lock = threading.Lock()
_stats: Any = None
_resolved = False


class _UsageLike(Protocol):
    input_tokens: int
    output_tokens: int


def segment(value: object) -> str:
    """One statsd name segment: ``[A-Za-z0-9_-]`` only, bounded, never empty."""
    text = _SEGMENT_BAD.sub("_", str(value if value is not None else "unknown"))[:_MAX_SEGMENT]
    return text or "unknown"


def _load_stats() -> Any:
    """Airflow's ``Stats`` facade, initialised from ``[metrics]`` if nobody did; None without Airflow."""
    global _stats, _resolved
    if _resolved:
        return _stats
    with _lock:
        if _resolved:
            return _stats
        try:
            from airflow.sdk._shared.observability.metrics import stats as stats_module
            from airflow.sdk.observability.stats import Stats

            # The task runner initialises Stats; other processes (triggerer runner, CLI) may not have.
            if getattr(stats_module, "_factory", None) is None:
                from airflow.sdk.configuration import conf
                from airflow.sdk.observability.metrics import stats_utils

                Stats.initialize(
                    factory=stats_utils.get_stats_factory(),
                    export_legacy_names=conf.getboolean("metrics", "legacy_names_on", fallback=True),
                )
            _stats = Stats
        except Exception:  # no Airflow, or an Airflow without the SDK stats: metrics are off
            log.debug("Airflow Stats not available; agent provider metrics are disabled", exc_info=True)
            _stats = None
        _resolved = True
        return _stats


def reset() -> None:
    """Forget the resolved ``Stats`` (tests, or after Airflow's metrics configuration changed)."""
    global _stats, _resolved
    with _lock:
        _stats, _resolved = None, False


def _tags(tags: Mapping[str, object] | None) -> dict[str, str] | None:
    return {k: str(v) for k, v in tags.items() if v is not None} if tags else None


def _name(name: str) -> str:
    return name if name.startswith(PREFIX + ".") else f"{PREFIX}.{name}"


def incr(name: str, count: int = 1, *, tags: Mapping[str, object] | None = None) -> None:
    """Add ``count`` to a counter; silently nothing when metrics are off or sending fails."""
    stats = _load_stats()
    if stats is None or count <= 0:
        return
    try:
        stats.incr(_name(name), count, tags=_tags(tags))
    except Exception:
        log.debug("could not send metric %s", name, exc_info=True)


def gauge(name: str, value: float, *, tags: Mapping[str, object] | None = None) -> None:
    """Set a gauge; silently nothing when metrics are off or sending fails."""
    stats = _load_stats()
    if stats is None or not math.isfinite(value):
        return
    try:
        stats.gauge(_name(name), value, tags=_tags(tags))
    except Exception:
        log.debug("could not send metric %s", name, exc_info=True)


def timing(name: str, ms: float, *, tags: Mapping[str, object] | None = None) -> None:
    """Record a duration in milliseconds; silently nothing when metrics are off or sending fails."""
    stats = _load_stats()
    if stats is None or not math.isfinite(ms) or ms < 0:
        return
    try:
        stats.timing(_name(name), ms, tags=_tags(tags))
    except Exception:
        log.debug("could not send metric %s", name, exc_info=True)


def _incr_dimensioned(name: str, count: int, tags: Mapping[str, object], *dims: object) -> None:
    """The tagged metric plus its dimensioned twin for tagless statsd."""
    incr(name, count, tags=tags)
    incr(".".join([name, *(segment(d) for d in dims)]), count)


def _tokens(usage: _UsageLike | Mapping[str, Any] | None, field: str) -> int:
    if usage is None:
        return 0
    value = usage.get(field) if isinstance(usage, Mapping) else getattr(usage, field, 0)
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


def micro_usd(cost_usd: float) -> int:
    """USD as whole micro-dollars: statsd counters are integers, and a call often costs < $0.01."""
    return max(round(cost_usd * 1_000_000), 0)


# -- what the guarded pipeline calls ---------------------------------------------------------------


def record_call(
    provider: str,
    model: str,
    outcome: str,
    usage: _UsageLike | Mapping[str, Any] | None = None,
    cost_usd: float | None = None,
    wait_s: float = 0.0,
    requests: int = 1,
) -> None:
    """
    One logical guarded call finished (``outcome`` ``ok`` or an error class such as ``error``,
    ``rate_limited``, ``circuit_open``): counts, tokens, cost, rate-limit wait and retries.

    ``cost_usd`` None means the price was unknown: counted in ``cost_unknown``, never as $0.
    """
    dims = {"provider": provider, "model": model}
    _incr_dimensioned("calls", 1, {**dims, "outcome": outcome}, provider, model, outcome)
    for field, name in (("input_tokens", "tokens.input"), ("output_tokens", "tokens.output")):
        count = _tokens(usage, field)
        if count:
            _incr_dimensioned(name, count, dims, provider, model)
    if cost_usd is None:
        if outcome == OUTCOME_OK:
            _incr_dimensioned("cost_unknown", 1, dims, provider, model)
    elif math.isfinite(cost_usd) and cost_usd > 0:
        _incr_dimensioned("cost_usd", micro_usd(cost_usd), dims, provider, model)
    if wait_s and wait_s > 0:
        timing("rate_limit.wait_ms", wait_s * 1000.0, tags=dims)
    if requests > 1:
        record_retries(provider, model, requests - 1)


def record_retries(provider: str, model: str, count: int = 1) -> None:
    """``count`` requests were retries of an earlier failed request."""
    _incr_dimensioned("retries", count, {"provider": provider, "model": model}, provider, model)


def record_rate_limit_wait(key: str, wait_s: float) -> None:
    """A permit for rate-limit ``key`` was granted after waiting ``wait_s`` seconds."""
    timing("rate_limit.wait_ms", wait_s * 1000.0, tags={"key": key})


def scope_kind(scope: str) -> str:
    """``run:dag:run`` -> ``run``: the budget kind, without ids that would explode metric cardinality."""
    return segment(scope.split(":", 1)[0]) if scope else "unknown"


def record_budget_refused(scope: str) -> None:
    """A call was refused because budget ``scope`` (a scope key such as ``day:dag:2025-01-31``) was full."""
    kind = scope_kind(scope)
    _incr_dimensioned("budget.refused", 1, {"scope": kind}, kind)


def record_breaker_open(provider: str, model: str) -> None:
    """A call to ``provider/model`` was refused by its open circuit breaker."""
    _incr_dimensioned("breaker.open", 1, {"provider": provider, "model": model}, provider, model)


__all__ = [
    "OUTCOME_ERROR",
    "OUTCOME_OK",
    "PREFIX",
    "gauge",
    "incr",
    "micro_usd",
    "record_breaker_open",
    "record_budget_refused",
    "record_call",
    "record_rate_limit_wait",
    "record_retries",
    "reset",
    "scope_kind",
    "segment",
    "timing",
]
