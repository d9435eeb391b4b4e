"""
The two floors of ``bench/bench_fleet.py``: what Airflow alone takes for a fleet's shape.

* :func:`noop_floor_dag`: N plain ``@task`` no-ops in 4 task groups. Every task is scheduled,
  queued through Celery, started in a task process that parses its DAG file, and reported back:
  the cost of the worker path with zero work.
* :func:`trigger_floor_dag`: N :class:`TriggerFloorOperator` tasks in the same shape. Each one has
  ``start_from_trigger = True``, so the scheduler hands it straight to the triggerer (no worker, no
  DAG file parse), and its :class:`OneCallTrigger` makes one HTTP call to the OpenAI-compatible
  server and ends the task with ``TaskSuccessEvent``: the cost of the triggerer path with one call.

Nothing here belongs to the provider's agent code on purpose: the floors are what any operator
would take on the same stack, so an agent mode can be compared with them. Triggers must live in an
importable module (the triggerer imports them by class path), hence this module rather than the DAG
file. It imports only the Airflow SDK at module level; ``httpx`` loads in the triggerer on the first
call.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from airflow.sdk import DAG, BaseOperator, TaskGroup, task
from airflow.triggers.base import BaseTrigger, StartTriggerArgs, TaskSuccessEvent, TriggerEvent

from airflow_agent_provider.triggers._events import trigger_event

#: Connection variable the launcher sets in every Airflow process (host = OpenAI base URL).
DEFAULT_CONN_ENV = "AIRFLOW_CONN_AGENT_OPENAI_DEFAULT"
MODULES = 4

_clients: dict[int, Any] = {}


def _endpoint(conn_env: str) -> tuple[str, str]:
    """``(chat completions URL, API key)`` from a JSON ``AIRFLOW_CONN_*`` variable."""
    raw = os.environ.get(conn_env)
    if not raw:
        raise RuntimeError(f"{conn_env} is not set in the triggerer's environment")
    conn = json.loads(raw)
    return conn["host"].rstrip("/") + "/chat/completions", conn.get("password") or ""


def _client() -> Any:
    """
    One ``httpx.AsyncClient`` per event loop, without a connection cap.

    httpx caps a client at 100 connections by default, which would cap the floor's concurrency at
    100 calls in flight; building a client per trigger costs an SSL context each (blocking work on
    the triggerer's loop). Both would measure this module instead of Airflow.
    """
    import httpx

    loop = id(asyncio.get_running_loop())
    client = _clients.get(loop)
    if client is None:
        # Idle connections expire well before the local server's keep-alive (uvicorn's 5 s), so a
        # call never reuses one the server is closing (httpx's own expiry, 5 s, races it).
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=1000, keepalive_expiry=2.0)
        client = _clients[loop] = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120.0))
    return client


class OneCallTrigger(BaseTrigger):
    """
    One chat completion; ends the task with ``TaskSuccessEvent`` (the reply text as ``return_value``).

    :param prompt: The user message.
    :param model: Model name sent to the server.
    :param conn_env: Environment variable holding the connection (JSON with ``host`` and ``password``).
    :param end_task: End the task from the trigger (``TaskSuccessEvent``); False fires a plain event
        that resumes the task on a worker (``execute_complete``), as ``dag.test()`` needs.
    """

    def __init__(
        self, prompt: str, model: str = "gpt-5-mini", conn_env: str = DEFAULT_CONN_ENV, end_task: bool = True
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger.__init__ is unannotated
        self.prompt = prompt
        self.model = model
        self.conn_env = conn_env
        self.end_task = end_task

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.OneCallTrigger",
            {
                "prompt": self.prompt,
                "model": self.model,
                "conn_env": self.conn_env,
                "end_task": self.end_task,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import httpx

        url, key = _endpoint(self.conn_env)
        body = {"model": self.model, "max_tokens": 16, "messages": [{"role": "user", "content": self.prompt}]}
        headers = {"authorization": f"Bearer {key}"}
        try:
            response = await _client().post(url, json=body, headers=headers)
        except httpx.TransportError:
            # A kept-alive connection the server closed while the triggerer's loop was blocked (it
            # happens at 500 tasks): one retry on a fresh connection, as any client would.
            response = await _client().post(url, json=body, headers=headers)
        response.raise_for_status()
        text = response.json()["choices"][0]["message"]["content"]
        if self.end_task:
            yield TaskSuccessEvent(xcoms={"return_value": text})
        else:
            yield trigger_event({"text": text})


class TriggerFloorOperator(BaseOperator):
    """
    Starts in the triggerer (``start_from_trigger``) and ends there: one call, no worker.

    ``execute`` exists for ``dag.test()``, which ignores ``start_from_trigger``: it defers to the same
    trigger and returns the reply on resume.
    """

    start_from_trigger = True
    template_fields = ()

    def __init__(self, *, prompt: str, model: str = "gpt-5-mini", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt
        self.model = model
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=f"{__name__}.OneCallTrigger",
            trigger_kwargs={"prompt": prompt, "model": model},
            next_method="execute_complete",
            next_kwargs=None,
            timeout=None,
        )

    def execute(self, context: Any) -> None:
        self.defer(
            trigger=OneCallTrigger(self.prompt, self.model, end_task=False), method_name="execute_complete"
        )

    def execute_complete(self, context: Any, event: Any = None) -> Any:
        return event.get("text") if isinstance(event, dict) else event


@task
def noop() -> None:
    """Nothing: the worker path's floor."""


def _module_sizes(n: int, modules: int) -> list[int]:
    return [n // modules + (1 if m < n % modules else 0) for m in range(modules)]


def _floor_dag(dag_id: str, n: int, modules: int, add_task: Callable[[int], object]) -> DAG:
    """``n`` tasks made by ``add_task(i)`` (1-based) in ``modules`` task groups, no dependencies."""
    with DAG(
        dag_id, schedule=None, catchup=False, max_active_tasks=max(n, 16), tags=["bench", "floor"]
    ) as dag:
        i = 0
        for m, size in enumerate(_module_sizes(n, modules), start=1):
            with TaskGroup(f"M{m}"):
                for _ in range(size):
                    i += 1
                    add_task(i)
    return dag


def noop_floor_dag(dag_id: str, n: int, modules: int = MODULES) -> DAG:
    r"""``n`` no-op ``@task``\\ s in ``modules`` task groups, no dependencies between them."""
    return _floor_dag(dag_id, n, modules, lambda i: noop.override(task_id=f"a{i:04d}")())


def trigger_floor_dag(dag_id: str, n: int, modules: int = MODULES, model: str = "gpt-5-mini") -> DAG:
    """``n`` :class:`TriggerFloorOperator` tasks in ``modules`` task groups, no dependencies."""
    return _floor_dag(
        dag_id,
        n,
        modules,
        lambda i: TriggerFloorOperator(
            task_id=f"a{i:04d}", prompt=f"[[reply: ok {i}]] floor {i}", model=model
        ),
    )


__all__ = ["OneCallTrigger", "TriggerFloorOperator", "noop_floor_dag", "trigger_floor_dag"]
