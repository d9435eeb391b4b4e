"""Helpers for operator tests: an in-memory task_state_store and a minimal task-instance for execute()."""

from __future__ import annotations

import copy
import json
from typing import Any


class MemoryStateStore:
    """Same interface as ``context["task_state_store"]`` (get/set/delete); values must be JSON-safe."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.writes = 0

    def get(self, key: str, default: Any = None) -> Any:
        return copy.deepcopy(self.data.get(key, default))

    def set(self, key: str, value: Any) -> None:
        self.data[key] = json.loads(json.dumps(value))  # proves the value is JSON-safe
        self.writes += 1

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


class XComTI:
    """Answers ``xcom_pull(task_ids=...)`` from a dict, like a task instance whose upstreams ran."""

    def __init__(self, xcoms: dict[str, Any] | None = None, try_number: int = 1) -> None:
        self.xcoms = xcoms or {}
        self.try_number = try_number
        # identity of the task instance, as the real one has it (ledger and reservation ids use it)
        self.dag_id = "execute_tests"
        self.task_id = "agent"
        self.map_index = -1

    def xcom_pull(self, task_ids: str, **_: Any) -> Any:
        return self.xcoms.get(task_ids)


def make_context(
    xcoms: dict[str, Any] | None = None, store: MemoryStateStore | None = None
) -> dict[str, Any]:
    import uuid

    context: dict[str, Any] = {"ti": XComTI(xcoms), "run_id": f"manual__{uuid.uuid4().hex[:8]}"}
    if store is not None:
        context["task_state_store"] = store
    return context


def run_trigger(trigger) -> Any:
    """The first event of a trigger, run in a fresh event loop (as ``dag.test()`` runs triggers inline)."""
    import asyncio

    async def first():
        async for event in trigger.run():
            return event

    return asyncio.run(first())


def run_operator(op, context: dict[str, Any]) -> Any:
    """
    Render the templated fields (with upstream results) and execute, as the task runner does; a
    deferral runs its trigger inline and resumes ``execute_complete`` with the event (as ``dag.test()``).
    """
    from airflow.sdk.exceptions import TaskDeferred

    op.render_template_fields(context)
    step, kwargs = op.execute, {}
    while True:
        try:
            return step(context, **kwargs)
        except TaskDeferred as deferred:
            event = run_trigger(deferred.trigger)
            kwargs = {**(deferred.kwargs or {}), "event": event.payload}
            step = getattr(op, deferred.method_name)
