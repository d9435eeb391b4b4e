"""Apache Airflow provider that runs fleets of LLM agents as DAGs for ERP workflows."""

from __future__ import annotations

__version__ = "0.1.0"
