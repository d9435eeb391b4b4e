"""Which permission each route asks for, with which DAG, before it reads anything (in process).

The policy is ``TEST_ACCESS`` (conftest): Airflow's shape of dependencies over a fixed user table.
That Airflow's real auth manager gives the same answers is ``test_api_server_auth.py``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from airflow_agent_provider.plugins.api import create_app
from tests.plugins.conftest import DAG, RUN, SECRET_DAG, TEST_ACCESS, make_client

R = RUN.replace("+", "%2B")

#: route -> which test users get 200 (everyone else authenticated gets 403).
ROUTES = {
    "/": {"admin", "erp_reader", "fleet_viewer", "nobody"},
    "/api/openapi.json": {"admin", "erp_reader", "fleet_viewer", "nobody"},
    f"/api/runs/{DAG}/{R}/costs": {"admin", "erp_reader"},
    f"/api/runs/{DAG}/{R}/snapshot": {"admin", "erp_reader"},
    f"/api/workflows/{DAG}/spend": {"admin", "erp_reader"},
    f"/api/runs/{SECRET_DAG}/{R}/costs": {"admin"},
    f"/api/runs/{SECRET_DAG}/{R}/snapshot": {"admin"},
    f"/api/workflows/{SECRET_DAG}/spend?day=2026-11-30": {"admin"},
    f"/api/runs/{DAG}/{R}": {"admin", "erp_reader"},
    f"/api/runs/{SECRET_DAG}/{R}": {"admin"},
    f"/api/workflows/{DAG}": {"admin", "erp_reader"},
    f"/api/workflows/{SECRET_DAG}": {"admin"},
    "/api/runs": {"admin", "erp_reader", "fleet_viewer", "nobody"},  # rows filtered per DAG: test_api
    "/api/overview": {"admin", "fleet_viewer"},
    "/api/limits": {"admin", "fleet_viewer"},
    "/static/chart.umd.min.js": {"admin", "erp_reader", "fleet_viewer", "nobody"},
    "/api/store": {"admin", "fleet_viewer"},
    "/api/limits/openai/gpt-5-mini": {"admin", "fleet_viewer"},
    "/api/breakers/openai/gpt-5-mini": {"admin", "fleet_viewer"},
}
USERS = ["admin", "erp_reader", "fleet_viewer", "nobody"]


@pytest.mark.parametrize("path", list(ROUTES))
def test_each_route_asks_for_its_permission(spent_store, store_url, path):
    for user in USERS:
        with make_client(spent_store, store_url, user=user) as client:
            response = client.get(path)
        if user in ROUTES[path]:
            assert response.status_code == 200, (user, path, response.text)
        else:
            assert response.status_code == 403, (user, path, response.text)
            assert response.json() == {"detail": "Forbidden"}  # nothing but the refusal


@pytest.mark.parametrize("path", list(ROUTES))
def test_no_session_is_401_and_an_invalid_token_403_everywhere(spent_store, store_url, path):
    with make_client(spent_store, store_url, user=None) as client:
        response = client.get(path)
        assert response.status_code == 401
        assert response.json() == {"detail": "Not authenticated"}
        assert response.headers["cache-control"] == "no-store"
        forged = client.get(path, headers={"Authorization": "Bearer forged"})
        assert forged.status_code == 403
        assert forged.json() == {"detail": "Invalid JWT token"}


def test_authentication_comes_before_input_checks_and_lookups(spent_store, store_url):
    with make_client(spent_store, store_url, user=None) as client:
        # An invalid id or an unknown run does not tell an outsider anything: 401 first.
        assert client.get(f"/api/runs/bad%20dag/{R}/costs").status_code == 401
        assert client.get(f"/api/runs/{DAG}/no_such_run/costs").status_code == 401
    with make_client(spent_store, store_url, user="erp_reader") as client:
        assert client.get(f"/api/runs/{SECRET_DAG}/no_such_run/costs").status_code == 403
        assert client.get(f"/api/runs/{DAG}/no_such_run/costs").status_code == 404


def test_a_browser_without_a_session_gets_a_sign_in_link_and_no_data(spent_store, store_url):
    with make_client(spent_store, store_url, user=None) as client:
        response = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
        api = client.get(f"/api/runs/{DAG}/{R}/costs", headers={"Accept": "text/html"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert '<a href="/auth/login?next=/" target="_top">Sign in</a>' in response.text
    assert "<script" not in response.text
    assert "Run cost per agent" not in response.text
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    # The sign-in link names the page asked for (the caller's own URL), and nothing from the store.
    assert api.status_code == 401
    assert "Finance" not in api.text
    assert "usd" not in api.text
    with make_client(spent_store, store_url, user="nobody") as client:
        refused = client.get("/api/store", headers={"Accept": "text/html"})
    assert refused.status_code == 403
    assert "not allowed" in refused.text
    assert "sqlite" not in refused.text


def test_openapi_lists_every_endpoint(client):
    paths = set(client.get("/api/openapi.json").json()["paths"])
    assert paths == {
        "/api/store",
        "/api/runs/{dag_id}/{run_id}/costs",
        "/api/runs/{dag_id}/{run_id}/snapshot",
        "/api/workflows/{dag_id}/spend",
        "/api/limits/{key}",
        "/api/breakers/{key}",
        "/api/overview",
        "/api/runs",
        "/api/runs/{dag_id}/{run_id}",
        "/api/workflows/{dag_id}",
        "/api/limits",
    }
    assert client.get("/openapi.json").status_code == 404  # FastAPI's own, unauthenticated one is off


def test_the_policy_is_built_at_the_first_request_and_a_failure_serves_nothing(spent_store, store_url):
    built = []

    def factory():
        built.append(1)
        return TEST_ACCESS

    app = create_app(lambda: spent_store, lambda: store_url, access=factory)
    assert built == []
    assert not any(getattr(r, "path", "").startswith("/api/") for r in app.routes)
    with TestClient(app, headers={"Authorization": "Bearer admin"}) as client:
        assert client.get("/api/store").status_code == 200
        assert client.get("/api/store").status_code == 200
    assert built == [1]

    def broken():
        raise ImportError("no airflow.api_fastapi here")

    with TestClient(create_app(lambda: spent_store, lambda: store_url, access=broken)) as client:
        for path in ROUTES:
            response = client.get(path, headers={"Authorization": "Bearer admin"})
            assert response.status_code == 500, path
            assert response.json() == {
                "detail": "the agent provider plugin cannot check Airflow authentication; see the API server log"
            }


def test_loading_the_plugin_imports_neither_fastapi_nor_airflow_api_server_code():
    # Every task process loads the plugins (for their listeners): FastAPI there would cost each
    # task about 0.2 s. Only reading ``fastapi_apps`` (the API server does) builds the app.
    code = (
        "import sys\n"
        "from airflow_agent_provider.plugins.plugin import AgentProviderPlugin\n"
        "plugin = AgentProviderPlugin()\n"
        "def loaded():\n"
        "    return sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')"
        " or m.startswith('airflow.api_fastapi.core_api') or m.startswith('airflow_agent_provider.plugins.a'))\n"
        "print(loaded())\n"
        "apps = plugin.fastapi_apps\n"
        "print(type(apps[0]['app']).__name__, apps is plugin.fastapi_apps)\n"
        "print([m for m in loaded() if m.startswith(('airflow.api_fastapi', 'airflow_agent_provider'))])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    before, app, after = result.stdout.strip().splitlines()[-3:]
    assert before == "[]"
    assert app == "FastAPI True"
    # The app is built, but Airflow's API code and the auth checks still wait for the first request.
    assert after == "['airflow_agent_provider.plugins.api']"
