"""
The Airflow UI plugin: a read-only Operations page for LLM agent costs, budgets and limits.

``plugin`` registers it with Airflow; ``auth`` is the only module that imports Airflow's API
server code (Airflow's auth-manager dependencies, imported at the first request). ``api`` (the
FastAPI app, authorization given as an ``Access`` policy), ``page`` (the HTML) and ``params``
(input checks) work without Airflow, so they can be tested and served on their own.
"""

from __future__ import annotations
