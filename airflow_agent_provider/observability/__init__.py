"""
Operations views of the shared store: metrics for the guarded calls and run snapshots (Airflow-free).

- ``metrics``: ``record_call`` and friends, emitted through Airflow's ``Stats`` when it is importable
  and a no-op otherwise, so the engines never depend on Airflow for observability;
- ``snapshots``: ``run_snapshot`` -- what one DAG run cost and the state of the models it used.
"""

from __future__ import annotations
