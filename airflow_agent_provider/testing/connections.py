"""
Airflow connections pointing at a local LLM server, as environment variables.

Airflow resolves ``AIRFLOW_CONN_<CONN_ID>`` before its metadata database, so exporting these two
variables is enough for tests, the demo and ``airflow dags test`` subprocesses to talk to the local
server with the provider's default connection ids. Kept free of FastAPI/uvicorn imports so that
code which only needs the variables does not pull in the server.
"""

from __future__ import annotations

import json

OPENAI_CONN_ENV = "AIRFLOW_CONN_AGENT_OPENAI_DEFAULT"
ANTHROPIC_CONN_ENV = "AIRFLOW_CONN_AGENT_ANTHROPIC_DEFAULT"


def connection_env(openai_url: str, anthropic_url: str, api_key: str = "test-key") -> dict[str, str]:
    """
    Return the ``AIRFLOW_CONN_*`` variables for ``agent_openai_default`` and ``agent_anthropic_default``.

    :param openai_url: OpenAI base URL, including ``/v1`` (``LLMServer.openai_base_url``).
    :param anthropic_url: Anthropic base URL, the server root (``LLMServer.anthropic_base_url``).
    :param api_key: Stored as the connection password; the local server accepts any non-empty key
        except ``invalid-key``.
    """
    return {
        OPENAI_CONN_ENV: json.dumps({"conn_type": "agent_openai", "host": openai_url, "password": api_key}),
        ANTHROPIC_CONN_ENV: json.dumps(
            {"conn_type": "agent_anthropic", "host": anthropic_url, "password": api_key}
        ),
    }
