"""
The rate-limit and breaker views: each configured key's usage per tier, leases, pause and breaker.

Part of the Operations views (:mod:`airflow_agent_provider.plugins.views`), computed from the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.observability.snapshots import iso_utc
from airflow_agent_provider.plugins._view_common import TOP_FROM_RUNS, WARN_RATIO, Unknown, latest_records

if TYPE_CHECKING:
    from airflow_agent_provider.stores.base import Store
    from airflow_agent_provider.stores.runs_api import RunRecord


def configured_limits(records: Iterable[RunRecord]) -> dict[str, dict[str, Any]]:
    """Rate-limit key -> its limits and the workflows that configure it (latest record of each)."""
    keys: dict[str, dict[str, Any]] = {}
    for record in records:
        for rule in record.rate_limits:
            entry = keys.setdefault(rule["key"], {"limits": dict(rule.get("limits") or {}), "workflows": []})
            if record.dag_id not in entry["workflows"]:
                entry["workflows"].append(record.dag_id)
    return dict(sorted(keys.items()))


def limit_row(
    store: Store, key: str, limits: dict[str, Any] | None, workflows: list[str], now: float
) -> dict[str, Any]:
    """One key's usage per tier against its limits, leases held, pause and breaker state."""
    from airflow_agent_provider.limits.policy import RateLimitPolicy

    policy = RateLimitPolicy.from_mapping(limits or {})
    usage = store.limit_usage(key, policy.tiers())
    until = store.paused_until(key)
    tiers = []
    for tier in usage.tiers:
        ratio = tier.used / tier.limit
        tiers.append(
            {
                "name": tier.name,
                "unit": tier.unit,
                "limit": tier.limit,
                "used": tier.used,
                "window_s": round(tier.window_s - policy.window_margin_s, 3),
                "pct": round(ratio * 100, 1),
                "level": "over" if ratio >= 1 else "warn" if ratio >= WARN_RATIO else "ok",
            }
        )
    return {
        "key": key,
        "configured": limits is not None,
        "workflows": workflows,
        "tiers": tiers,
        "max_concurrent": policy.max_concurrent,
        "leases_held": usage.leases_held,
        "paused": until is not None,
        "paused_until_iso": iso_utc(until),
        "resume_in_s": None if until is None else round(max(until - now, 0.0), 3),
        "breaker": store.breaker_state(key),
        "seen": usage.seen,
    }


def limits_view(store: Store, records: Iterable[RunRecord], now: float) -> list[dict[str, Any]]:
    return [
        limit_row(store, key, c["limits"], c["workflows"], now)
        for key, c in configured_limits(records).items()
    ]


def limit_view(store: Store, key: str, now: float) -> dict[str, Any]:
    """One key; :class:`Unknown` when no workflow configures it and the store never saw it."""
    configured = configured_limits(latest_records(store, lambda _: True).values()).get(key)
    row = limit_row(
        store,
        key,
        configured["limits"] if configured else None,
        configured["workflows"] if configured else [],
        now,
    )
    if configured is None and not row["seen"] and not row["paused"] and row["breaker"] == "closed":
        raise Unknown(
            "key",
            f"unknown rate-limit key {key!r}: no workflow configures it and the store has never seen it",
        )
    return row


def breaker_view(store: Store, key: str) -> dict[str, Any]:
    """
    A breaker's state; :class:`Unknown` when it is closed and the key is neither a configured
    rate-limit key nor a model charged in the recent runs (a never-seen key is not "healthy").
    """
    state = store.breaker_state(key)
    if state == "closed":
        records = latest_records(store, lambda _: True).values()
        models = {
            f"{e.provider}/{e.model}"
            for d, r in [(x.dag_id, x.run_id) for x in store.ledger_runs(None, limit=TOP_FROM_RUNS)]
            for e in store.ledger_entries(d, r)
        }
        if key not in configured_limits(records) and key not in models:
            raise Unknown(
                "key", f"unknown breaker key {key!r}: no workflow configures it and no recent run called it"
            )
    return {"key": key, "state": state}


__all__ = ["breaker_view", "configured_limits", "limit_row", "limit_view", "limits_view"]
