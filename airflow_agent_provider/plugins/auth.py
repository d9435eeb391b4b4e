"""
Airflow's own authentication and authorization for the Operations app (the API server's policy).

Built from the auth-manager dependencies of Airflow's FastAPI API
(``airflow.api_fastapi.core_api.security``), so a request to ``/agent-provider`` is judged exactly
as one to ``/api/v2``: the ``Authorization: Bearer`` token wins over the UI's ``_token`` cookie,
no credential or an expired token is 401, an invalid token or a missing permission 403, and the
configured auth manager (SimpleAuthManager, FAB, Keycloak, ...) decides. The permissions:

- every route: an authenticated user (``requires_authenticated()``);
- a run or workflow endpoint: read access to the runs of the DAG named in the path
  (``requires_access_dag("GET", DagAccessEntity.RUN)``, which also checks the DAG's team);
- the store, limit and breaker endpoints (fleet-wide state that belongs to no DAG): the cluster
  activity view (``requires_access_view(AccessView.CLUSTER_ACTIVITY)``), the permission of
  Airflow's own fleet dashboard; Viewer and above have it in SimpleAuthManager and FAB;
- fleet lists (overview, recent runs): a row of a DAG only if the user may read that DAG's runs
  (the same ``is_authorized_dag(GET, RUN)`` question, asked per DAG);
- the store's location (masked URL, connection error text): configuration read of the
  ``agent_provider`` section (``is_authorized_configuration``), Admin in FAB.

Importing this module imports Airflow's API server code (about a second); ``api.create_app``
calls :func:`airflow_access` at the first request, so workers that load the plugin never do.

FastAPI reads the dependency signatures below at runtime: their annotations name only this module's
globals (``Any``, ``Callable``, ``Request``), which it resolves from the string annotations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request

from airflow_agent_provider.plugins.api import Access

#: The configuration section whose read permission shows the store's location.
CONFIG_SECTION = "agent_provider"


def airflow_access() -> Access:
    """The :class:`~airflow_agent_provider.plugins.api.Access` policy of the running API server."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        AccessView,
        ConfigurationDetails,
        DagAccessEntity,
        DagDetails,
    )
    from airflow.api_fastapi.core_api.security import (
        get_user,
        requires_access_dag,
        requires_access_view,
        requires_authenticated,
    )

    def store_details(user: Any = Depends(get_user)) -> bool:
        return get_auth_manager().is_authorized_configuration(
            method="GET", details=ConfigurationDetails(section=CONFIG_SECTION), user=user
        )

    def readable_dags(user: Any = Depends(get_user)) -> Callable[[str], bool]:
        """Per DAG, the check ``requires_access_dag("GET", RUN)`` makes for a DAG in the path."""
        manager = get_auth_manager()

        def may_read(dag_id: str) -> bool:
            return manager.is_authorized_dag(
                method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
            )

        return may_read

    def login_url(request: Request) -> str:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return get_auth_manager().get_url_login(next_url=target)

    return Access(
        authenticated=requires_authenticated(),
        dag_runs=requires_access_dag("GET", DagAccessEntity.RUN),
        fleet=requires_access_view(AccessView.CLUSTER_ACTIVITY),
        store_details=store_details,
        login_url=login_url,
        readable_dags=readable_dags,
    )


__all__ = ["CONFIG_SECTION", "airflow_access"]
