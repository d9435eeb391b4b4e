"""The Airflow UI plugin: a read-only Operations page for LLM agent costs, budgets and limits.

``plugin`` is the only module here that imports Airflow; ``api`` (the FastAPI app), ``page`` (the
HTML) and ``params`` (input checks) work without it, so they can be tested and served on their own.
"""

from __future__ import annotations
