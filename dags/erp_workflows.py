"""Airflow DAG file: every workflow definition under ``workflows/`` becomes a DAG.

A broken definition shows up as an import error of this file that names the broken YAML file, the
field path and the reason; the other workflows keep loading.
"""

from __future__ import annotations

from pathlib import Path

from airflow_agent_provider.factory import load_workflow_dags

globals().update(load_workflow_dags(Path(__file__).parent / "workflows"))
