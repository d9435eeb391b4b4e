"""``AgentProviderPlugin``: mounts the read-only Operations app in the Airflow API server.

Registered through the ``airflow.plugins`` entry point (``agent_provider``). The app is mounted
at ``/agent-provider`` (outside Airflow's reserved prefixes). Airflow mounts plugin apps without
authentication, so the app checks every request itself with Airflow's auth manager
(``auth.py``: a signed-in user everywhere, DAG run read for a DAG's costs, the cluster activity
view for store-wide state) and only reads. The nav entry shows the page inside the Airflow UI
(``/plugin/agent-provider``, an iframe of ``/agent-provider/``, which gets the UI's session cookie).

Loading the plugin (every Airflow process does, workers included) imports neither Airflow's API
server code nor a store: both happen at the first request to the app.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_agent_provider.plugins.api import create_app
from airflow_agent_provider.plugins.page import TITLE

URL_PREFIX = "/agent-provider"


class AgentProviderPlugin(AirflowPlugin):
    """The LLM agents Operations page: run costs, workflow spend, limits, breakers, store health."""

    name = "agent_provider"
    fastapi_apps = [  # noqa: RUF012 - AirflowPlugin's own attribute, read by the plugins manager
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "LLM agents: costs & limits API"},
    ]
    external_views = [  # noqa: RUF012 - AirflowPlugin's own attribute
        {
            "name": TITLE,
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "agent-provider",
        },
    ]
