"""Workflow definitions -> Airflow DAGs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow_agent_provider.factory.callback_parse import dag_ids_for_callbacks

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from airflow_agent_provider.factory.builder import build_dag as build_dag


def load_workflow_dags(folder: str | os.PathLike[str]) -> dict[str, DAG]:
    """
    Build one DAG per valid definition in ``folder`` for a DAG file's ``globals().update(...)``
    (see :mod:`airflow_agent_provider.factory.loader`).

    A dag-processor parse that only runs success callbacks needs none of them
    (:mod:`airflow_agent_provider.factory.callback_parse`): it returns at once, without importing
    the factory; one that runs other callbacks builds only the workflows they name.
    """
    wanted = dag_ids_for_callbacks()
    if wanted is not None and not wanted:
        return {}
    from airflow_agent_provider._gc import collector_paused

    # A DAG file's first line of work: imported in every process that parses a workflow file (the
    # dag-processor's parse of each file, a task's start), so without the cyclic collector's full
    # passes over the process's heap (see airflow_agent_provider._gc).
    with collector_paused():
        from airflow_agent_provider.factory.loader import load_workflow_dags as load

    return load(folder, only=wanted)


def __getattr__(name: str) -> Any:
    if name == "build_dag":
        from airflow_agent_provider._gc import collector_paused

        with collector_paused():
            from airflow_agent_provider.factory.builder import build_dag

        return build_dag
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["build_dag", "load_workflow_dags"]
