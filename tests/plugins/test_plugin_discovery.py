"""Airflow itself discovers the plugin and mounts its app, in a fresh AIRFLOW_HOME (subprocesses).

Until pyproject registers the ``airflow.plugins`` entry point, the plugin is loaded from a plugins
folder holding one import line; once it is registered the folder stays empty (loading it twice
would list it twice).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.plugins.conftest import DAG, RUN

VIEW = {
    "name": "LLM Agents: costs & limits",
    "href": "/agent-provider/",
    "destination": "nav",
    "category": "browse",
    "url_route": "agent-provider",
}
#: The Costs tabs: Airflow's UI fills {DAG_ID} / {RUN_ID} with encodeURIComponent.
DAG_VIEW = {
    "name": "Costs",
    "href": "/agent-provider/?view=dag&dag_id={DAG_ID}",
    "destination": "dag",
    "url_route": "agent-provider-dag-costs",
}
RUN_VIEW = {
    "name": "Costs",
    "href": "/agent-provider/?view=run&dag_id={DAG_ID}&run_id={RUN_ID}",
    "destination": "dag_run",
    "url_route": "agent-provider-run-costs",
}


@pytest.fixture
def airflow_env(tmp_path: Path) -> dict[str, str]:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    if not any(ep.name == "agent_provider" for ep in entry_points(group="airflow.plugins")):
        (plugins / "agent_provider_plugin.py").write_text(
            "from airflow_agent_provider.plugins.plugin import AgentProviderPlugin\n"
        )
    return {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__AGENT_PROVIDER__STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
    }


def _python(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in the Airflow environment; it must succeed (its stderr tail otherwise)."""
    result = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_airflow_plugins_lists_it_with_its_fastapi_app_and_nav_view(airflow_env, tmp_path):
    result = _python(airflow_env, "-m", "airflow", "plugins", "-o", "json")
    listed = json.loads(result.stdout[result.stdout.index("[") :])
    ours = [p for p in listed if p["name"] == "agent_provider"]
    assert len(ours) == 1, listed
    assert ours[0]["fastapi_apps"] == [
        {
            "app": "fastapi.applications.FastAPI",
            "url_prefix": "/agent-provider",
            "name": "LLM agents: costs & limits API",
        }
    ]
    assert ours[0]["external_views"] == [VIEW, DAG_VIEW, RUN_VIEW]
    # Loading the plugin does not open the store.
    assert not (tmp_path / "store.db").exists()


AIRFLOW_APP_CHECK = """
import json, sys
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app

client = TestClient(create_app())
run = sys.argv[2].replace("+", "%2B")
answers = [client.get(path) for path in (
    "/agent-provider/api/store", f"/agent-provider/api/runs/{sys.argv[1]}/{run}/costs", "/agent-provider/")]
out = {
    "anonymous": [(r.status_code, r.json(), r.headers.get("cache-control")) for r in answers],
    "post": client.post("/agent-provider/api/store").status_code,
}
print("RESULT " + json.dumps(out))
"""


def test_airflow_api_server_app_mounts_it_behind_airflow_auth(airflow_env, tmp_path):
    """Airflow's own app (in process, fresh AIRFLOW_HOME): the plugin's routes answer anonymous requests with 401.

    Reading with a token needs a migrated metadata DB (revoked tokens, the DAG's team are looked up):
    that is tested against a real api-server in test_api_server_auth.py.
    """
    result = _python(airflow_env, "-c", AIRFLOW_APP_CHECK, DAG, RUN)
    out = json.loads(result.stdout.split("RESULT ", 1)[1])
    # Airflow's "Not authenticated", answered by the plugin's app (its no-store header), not a 404.
    assert out["anonymous"] == [[401, {"detail": "Not authenticated"}, "no-store"]] * 3
    assert out["post"] == 405
    # Refusing needs neither the store nor anything else of the plugin's.
    assert not (tmp_path / "store.db").exists()
