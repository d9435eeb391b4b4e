"""
The Celery configuration of the provider's deployments: Airflow's own, plus the workers' preload.

Set as ``[celery] celery_config_options`` (``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS``) for every
Airflow process of the Compose file and the native launcher. Airflow uses this mapping *instead*
of its default one, so it starts from ``DEFAULT_CELERY_CONFIG`` and only adds Celery's ``imports``:
:mod:`airflow_agent_provider.deploy.worker_preload`, which a worker imports once in its main
process before it forks its task slots (why: that module). The scheduler and the api-server read
this mapping too, but Celery imports ``imports`` only when a worker starts.

A platform team with its own Celery configuration adds the same entry to its ``imports``.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

#: The module a worker imports before forking (Celery ``imports``).
PRELOAD_MODULE = "airflow_agent_provider.deploy.worker_preload"

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*tuple(DEFAULT_CELERY_CONFIG.get("imports") or ()), PRELOAD_MODULE),
}

__all__ = ["CELERY_CONFIG", "PRELOAD_MODULE"]
