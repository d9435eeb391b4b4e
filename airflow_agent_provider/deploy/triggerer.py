"""
Airflow's triggerer, run with one fix for Airflow 3.3: a ``start_from_trigger`` task no longer costs
two deserializations of its whole DAG, so a fleet's triggerer time grows with N, not N².

**The cost (Airflow 3.3.2).** For every trigger of a ``start_from_trigger`` task the triggerer
deserializes the task's whole DAG twice: its supervisor (``_create_workload``) reads
``SerializedDagModel.dag`` only to see whether the task has ``start_from_trigger`` set, and its
trigger runner (``TriggerRunner.create_runtime_ti``) deserializes the ``dag_data`` of the workload
again, on its event loop, to take the one task it builds a template context for. Each is
proportional to the DAG's size, so N tasks of one DAG cost N x O(N): that is why the issue's
triggerer floor "grows faster than linearly" (13.7 s for 100 tasks, 86.6 s for 500). Measured with
py-spy on a 500-agent triggerer-only fleet (d0b4ded): the two deserializations were 1826 of the
triggerer's 5178 busy samples (supervisor 898, runner 928; 54 ms and 58 ms per trigger), the
largest single cost of the run, and the runner's share is what Airflow's "async thread was
blocked" warning was measuring.

**The fix.** Both sides keep what they deserialized, in a small LRU of DAGs:

* the supervisor, only while it builds trigger workloads, serves ``SerializedDagModel.dag`` from
  the cache keyed by ``(dag_version_id, dag_hash, load_op_links)``: the hash is the content's, so
  a version rewritten in place is a new key. Within one such pass it also reads each version's
  serialized model once (``DBDagBag.get_serialized_dag_model`` queried it, and decoded the whole
  DAG's JSON, for every trigger);
* the runner keys by ``(dag_id, dag_version_id)`` and keeps the encoded DAG beside the result: a
  hit needs the workload's ``dag_data`` to be equal to it (a dict comparison, 0.6 ms against
  54 ms of deserialization for a 500-task DAG), so a differing payload is deserialized afresh.

Deserialized DAGs are shared read-only, as Airflow's own ``DBDagBag`` shares them between the
scheduler's loops and the api-server's requests. What the runner builds from the task stays per
trigger: the template context's params are new ``Param`` objects (``process_params`` copies the
values out of a ``SerializedParamsDict``), and a run's ``conf`` overrides those, not the cached DAG
(``tests/deploy/test_triggerer_fix.py``). A trigger that assigned to ``self.task_instance.task``
would see the next trigger of the same DAG version share that change; none of the provider's does.

**Where.** This module is the triggerer's entry point in both of the provider's deployments
(``python -m airflow_agent_provider.deploy.triggerer`` in place of ``airflow triggerer``, see
:mod:`airflow_agent_provider.deploy.settings`); arguments are Airflow's. The provider itself never
patches Airflow: a deployment of your own runs ``airflow triggerer`` unchanged unless it uses this
entry point. ``AIRFLOW_AGENT_PROVIDER_TRIGGERER_FIX=0`` runs Airflow's unchanged here. On an
Airflow whose ``create_runtime_ti`` takes other arguments the runner side is left alone. It belongs
upstream: deserialize one task, or cache per DAG version, in both places.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from airflow_agent_provider.deploy._entry_point import run_with_fix

#: Set to ``0`` to run Airflow's triggerer without the fix.
SWITCH = "AIRFLOW_AGENT_PROVIDER_TRIGGERER_FIX"
#: DAG versions kept per process: a triggerer runs the tasks of a few DAG versions at a time.
CACHE_SIZE = 16

_MARK = "_agent_provider_caches_dags"
#: Logged once per DAG version and side (what ``tests/deploy/test_fleet.py`` counts on the stack).
MISS_LOG = "Deserialized DAG %s (version %s) in the triggerer's %s, once for the triggers of its tasks"

#: Named, not ``__name__``: the module runs as ``__main__`` (``python -m``).
log = logging.getLogger("airflow_agent_provider.deploy.triggerer")
#: While the supervisor builds trigger workloads: the serialized DAG models it has read in that pass.
_building: contextvars.ContextVar[dict[tuple[int, str], Any] | None] = contextvars.ContextVar(
    "agent_provider_building_trigger_workloads", default=None
)


class DagCache:
    """A small LRU of deserialized DAGs, safe to use from several threads."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Any], *, same_as: Any = None) -> Any:
        """
        The DAG cached under ``key``, or ``load()``'s (then cached).

        :param same_as: When given, a cached entry counts only if it was stored with a value equal
            to this one (the encoded DAG it came from).
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and (same_as is None or entry[0] == same_as):
                self._entries.move_to_end(key)
                return entry[1]
        dag = load()
        with self._lock:
            self._entries[key] = (same_as, dag)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return dag


#: One per process (the trigger runner is a fork of the triggerer and gets its own copy).
SUPERVISOR_DAGS = DagCache()
RUNNER_DAGS = DagCache()


def _cache_workload_dags() -> None:
    """
    While the supervisor builds trigger workloads: read each DAG version's serialized model once per
    pass (``DBDagBag.get_serialized_dag_model``, a query that decodes the whole DAG's JSON, ran once
    per trigger), and serve ``SerializedDagModel.dag`` from the cache.
    """
    from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor
    from airflow.models.dagbag import DBDagBag
    from airflow.models.serialized_dag import SerializedDagModel

    if getattr(TriggerRunnerSupervisor.build_trigger_workloads, _MARK, False):
        return
    original_dag: property = SerializedDagModel.__dict__["dag"]
    fget: Callable[[SerializedDagModel], Any] = original_dag.fget  # type: ignore[assignment]
    original_build = TriggerRunnerSupervisor.build_trigger_workloads
    original_get = DBDagBag.get_serialized_dag_model

    def dag(self: SerializedDagModel) -> Any:
        if _building.get() is None or self.dag_version_id is None or not self.dag_hash:
            return fget(self)
        key = (self.dag_version_id, self.dag_hash, bool(self.load_op_links))

        def load() -> Any:
            log.info(MISS_LOG, self.dag_id, self.dag_version_id, "supervisor")
            return fget(self)

        return SUPERVISOR_DAGS.get(key, load)

    @functools.wraps(original_get)
    def get_serialized_dag_model(self: DBDagBag, version_id: Any, session: Any) -> Any:
        models = _building.get()
        if models is None:
            return original_get(self, version_id=version_id, session=session)
        key = (id(self), str(version_id))
        if key not in models:
            models[key] = original_get(self, version_id=version_id, session=session)
        return models[key]

    @functools.wraps(original_build)
    def build_trigger_workloads(self: TriggerRunnerSupervisor, *args: Any, **kwargs: Any) -> Any:
        token = _building.set({})
        try:
            return original_build(self, *args, **kwargs)
        finally:
            _building.reset(token)

    setattr(build_trigger_workloads, _MARK, True)
    SerializedDagModel.dag = property(dag, doc=original_dag.__doc__)  # type: ignore[method-assign,assignment]
    DBDagBag.get_serialized_dag_model = get_serialized_dag_model  # type: ignore[method-assign]
    TriggerRunnerSupervisor.build_trigger_workloads = build_trigger_workloads  # type: ignore[method-assign]


def _cache_runner_dags() -> bool:
    """Replace ``TriggerRunner.create_runtime_ti`` by one that reuses the DAG; False if it cannot."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner
    from airflow.serialization.serialized_objects import DagSerialization

    original = TriggerRunner.create_runtime_ti
    if getattr(original, _MARK, False):
        return True
    if list(inspect.signature(original).parameters) != ["task_instance", "encoded_dag", "dag_run_data"]:
        return False  # not the 3.3 method this replaces

    def create_runtime_ti(
        cls: type, task_instance: Any, encoded_dag: dict[str, Any], dag_run_data: dict[str, Any]
    ) -> Any:
        # Airflow 3.3's body, with the DAG from the cache instead of a deserialization per trigger.
        from airflow.api_fastapi.execution_api.datamodels.taskinstance import DagRun as DRDataModel
        from airflow.sdk.api.datamodels._generated import TIRunContext
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        key = (task_instance.dag_id, str(task_instance.dag_version_id))

        def load() -> Any:
            log.info(MISS_LOG, task_instance.dag_id, task_instance.dag_version_id, "trigger runner")
            return DagSerialization.from_dict(encoded_dag)

        dag = RUNNER_DAGS.get(key, load, same_as=encoded_dag)
        task = dag.get_task(task_instance.task_id)
        return RuntimeTaskInstance.model_construct(
            **task_instance.model_dump(exclude_unset=True),
            task=task,
            _ti_context_from_server=TIRunContext.model_construct(
                dag_run=DRDataModel(**dag_run_data),  # type: ignore[arg-type]  # as in Airflow's body
                max_tries=task.retries,
            ),
        )

    setattr(create_runtime_ti, _MARK, True)
    TriggerRunner.create_runtime_ti = classmethod(create_runtime_ti)  # type: ignore[method-assign,assignment]
    return True


def cache_trigger_dags() -> bool:
    """
    Install both halves of the fix (see the module docstring), once per process; returns whether
    the runner's half is in place too (False on an Airflow whose ``create_runtime_ti`` differs).
    """
    _cache_workload_dags()
    return _cache_runner_dags()


def main(argv: list[str] | None = None) -> None:
    """``airflow triggerer`` with the fix (unless switched off)."""
    run_with_fix("triggerer", SWITCH, cache_trigger_dags, argv)


if __name__ == "__main__":
    main()
