"""Workflow definitions -> Airflow DAGs."""

from __future__ import annotations

from airflow_agent_provider._gc import collector_paused

# A DAG file's first line of work: imported in every process that parses a workflow file (the
# dag-processor's parse of each file and of each callback request, a task's start), so without
# the cyclic collector's full passes over the process's heap (see airflow_agent_provider._gc).
with collector_paused():
    from airflow_agent_provider.factory.builder import build_dag
    from airflow_agent_provider.factory.loader import load_workflow_dags

__all__ = ["build_dag", "load_workflow_dags"]
