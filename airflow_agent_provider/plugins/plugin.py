"""``AgentProviderPlugin``: mounts the read-only Operations app in the Airflow API server.

Registered through the ``airflow.plugins`` entry point (``agent_provider``). The app is mounted
at ``/agent-provider`` (outside Airflow's reserved prefixes) **without Airflow's authentication**,
which is why it only reads and masks the store URL (see ``api.py``). The nav entry shows the page
inside the Airflow UI (``/plugin/agent-provider``, an iframe of ``/agent-provider/``).
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
