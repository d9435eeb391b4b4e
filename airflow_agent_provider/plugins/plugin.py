"""
``AgentProviderPlugin``: mounts the read-only Operations app in the Airflow API server.

Registered through the ``airflow.plugins`` entry point (``agent_provider``). The app is mounted
at ``/agent-provider`` (outside Airflow's reserved prefixes). Airflow mounts plugin apps without
authentication, so the app checks every request itself with Airflow's auth manager
(``auth.py``: a signed-in user everywhere, DAG run read for a DAG's costs, the cluster activity
view for store-wide state) and only reads. The page shows inside the Airflow UI (iframes of
``/agent-provider/...``, which get the UI's session cookie): the fleet overview under Browse
(``/plugin/agent-provider``), and a *Costs* tab on every DAG and every DAG run.

Loading the plugin (every Airflow process does, workers included: each task process loads the
plugins for their listeners) imports neither FastAPI, Airflow's API server code nor a store. The
app is built when the API server first reads ``fastapi_apps``; Airflow's API code and the store
load at the app's first request.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_agent_provider.plugins.page import TITLE

URL_PREFIX = "/agent-provider"
#: Where the views live in the Airflow UI: ``/plugin/<NAV_ROUTE>``, ``/dags/<dag>/plugin/<DAG_ROUTE>``
#: and ``/dags/<dag>/runs/<run>/plugin/<RUN_ROUTE>`` (routes must be unique across plugins).
NAV_ROUTE = "agent-provider"
DAG_ROUTE = "agent-provider-dag-costs"
RUN_ROUTE = "agent-provider-run-costs"


class AgentProviderPlugin(AirflowPlugin):
    """The LLM agents Operations page: run costs, workflow spend, limits, breakers, store health."""

    name = "agent_provider"

    @cached_property
    def fastapi_apps(self) -> list[Any]:  # type: ignore[override]  # a list, built on first read
        """
        The Operations app, built on first read: only the API server (and ``airflow plugins``)
        reads it, while every task process loads this plugin, and FastAPI alone costs those
        processes about 0.2 s each.
        """
        from airflow_agent_provider.plugins.api import create_app

        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "LLM agents: costs & limits API"}]

    # Airflow's UI puts the DAG id and run id into ``href`` with ``encodeURIComponent`` (so ``+`` and
    # ``:`` of a run id arrive intact) and shows each entry in an iframe: the nav entry under
    # Browse, a "Costs" tab on every DAG and on every DAG run.
    external_views = [
        {
            "name": TITLE,
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": NAV_ROUTE,
        },
        {
            "name": "Costs",
            "href": f"{URL_PREFIX}/?view=dag&dag_id={{DAG_ID}}",
            "destination": "dag",
            "url_route": DAG_ROUTE,
        },
        {
            "name": "Costs",
            "href": f"{URL_PREFIX}/?view=run&dag_id={{DAG_ID}}&run_id={{RUN_ID}}",
            "destination": "dag_run",
            "url_route": RUN_ROUTE,
        },
    ]
