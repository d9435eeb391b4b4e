"""
Upstream agent results as prompt material.

A downstream agent's prompt refers to the results of the agents it depends on
(``{{ results.payroll_summary.text }}`` or ``{{ results['HR.payroll_summary'].text }}``). This module
turns raw XCom values into those entries - including a clear "unavailable" entry for an upstream that
produced nothing (a failed non-critical agent) - so a prompt never breaks on a missing upstream.
Airflow-free: the operator pulls the XComs and hands them in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: How much of each upstream text goes into ``upstream_text``.
MAX_UPSTREAM_CHARS = 8_000


def unavailable_result(task_id: str) -> dict[str, Any]:
    """The entry for an upstream without a result; ``text`` is empty so prompts still render."""
    return {
        "status": "unavailable",
        "text": "",
        "output": None,
        "task_id": task_id,
        "reason": f"upstream task {task_id!r} produced no result (failed, skipped or not run)",
    }


def normalise_result(task_id: str, value: Any) -> dict[str, Any]:
    """
    One upstream XCom value as a result dict with at least ``status`` and ``text``.

    Agent results pass through; any other value (a plain Python task's return) is wrapped, so
    ``.text`` works in every prompt whatever produced the upstream value.
    """
    if value is None:
        return unavailable_result(task_id)
    if isinstance(value, Mapping) and "status" in value and "text" in value:
        return {**value, "task_id": value.get("task_id") or task_id}
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return {"status": "success", "text": text, "output": value, "task_id": task_id}


def is_available(result: Mapping[str, Any] | None) -> bool:
    """Whether an upstream result counts as produced (for ``critical_upstreams``)."""
    return bool(result and result.get("status") == "success")


def build_results(upstream_tasks: Mapping[str, str], pulled: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """
    Map both each alias and each task_id to its normalised result.

    :param upstream_tasks: alias -> upstream task_id.
    :param pulled: task_id -> raw XCom value (None when there is none).
    """
    results: dict[str, dict[str, Any]] = {}
    for alias, task_id in upstream_tasks.items():
        entry = normalise_result(task_id, pulled.get(task_id))
        results[task_id] = entry
        results[alias] = entry
    return results


def upstream_text(upstream_tasks: Mapping[str, str], results: Mapping[str, Mapping[str, Any]]) -> str:
    """A readable concatenation of all upstream results, one headed section per upstream."""
    sections = []
    for alias, task_id in upstream_tasks.items():
        entry = results.get(alias) or unavailable_result(task_id)
        if entry.get("status") == "success":
            body = str(entry.get("text") or "")
            if len(body) > MAX_UPSTREAM_CHARS:
                body = body[:MAX_UPSTREAM_CHARS] + " [...]"
        else:
            body = f"(unavailable: {entry.get('reason') or entry.get('status')})"
        sections.append(f"## {alias}\n{body}")
    return "\n\n".join(sections)
