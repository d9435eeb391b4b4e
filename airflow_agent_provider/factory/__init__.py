"""Workflow definitions -> Airflow DAGs."""

from __future__ import annotations

from airflow_agent_provider.factory.builder import build_dag
from airflow_agent_provider.factory.loader import load_workflow_dags

__all__ = ["build_dag", "load_workflow_dags"]
