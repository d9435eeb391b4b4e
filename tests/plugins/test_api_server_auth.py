"""The plugin behind Airflow's own authentication, on a real ``airflow api-server``.

One api-server for the module (tests.fixtures.api_server), loading the plugin through its entry
point, with SimpleAuthManager users from ``[core] simple_auth_manager_users`` and a passwords
file, tokens from ``POST /auth/token``, and a SQLite store holding spend of two DAGs:

- ``admin`` (Admin) and ``viewer`` (Viewer): read everything;
- ``nobody`` (a user without a role: SimpleAuthManager grants it nothing): authenticated, so it
  gets the page (which holds no data), and 403 from every API route;
- ``restricted`` (Viewer, but denied ``SECRET_DAG`` and configuration read): the per-DAG check.
  SimpleAuthManager alone denies a single DAG only in multi-team mode, so this server runs
  ``RestrictedSimpleAuthManager`` (tests/plugins/restricted_auth_manager.py): SimpleAuthManager
  with that one denial added; the users, tokens, roles and cookie handling are SimpleAuthManager's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import jwt
import pytest

from tests.fixtures.api_server import ApiServer, start_api_server
from tests.plugins.conftest import CALLS, DAG, RUN, SECRET_DAG, charge, record_run
from tests.plugins.test_reads_never_write import SQLiteWatch

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(900)]

PASSWORDS = {
    "admin": "pw-admin-1",
    "viewer": "pw-viewer-1",
    "nobody": "pw-nobody-1",
    "restricted": "pw-restricted-1",
}
R = RUN.replace("+", "%2B")
P = "/agent-provider"

PAGE = f"{P}/"
OPENAPI = f"{P}/api/openapi.json"
DAG_ROUTES = [
    f"{P}/api/runs/{DAG}/{R}/costs",
    f"{P}/api/runs/{DAG}/{R}/snapshot",
    f"{P}/api/workflows/{DAG}/spend",
    f"{P}/api/runs/{DAG}/{R}",
    f"{P}/api/workflows/{DAG}",
]
SECRET_ROUTES = [
    f"{P}/api/runs/{SECRET_DAG}/{R}/costs",
    f"{P}/api/runs/{SECRET_DAG}/{R}/snapshot",
    f"{P}/api/workflows/{SECRET_DAG}/spend?day=2026-11-30",
    f"{P}/api/runs/{SECRET_DAG}/{R}",
    f"{P}/api/workflows/{SECRET_DAG}",
]
FLEET_ROUTES = [
    f"{P}/api/store",
    f"{P}/api/limits/openai/gpt-5-mini",
    f"{P}/api/breakers/openai/gpt-5-mini",
    f"{P}/api/overview",
    f"{P}/api/limits",
]
API_ROUTES = [OPENAPI, *DAG_ROUTES, *SECRET_ROUTES, *FLEET_ROUTES]
ALL_ROUTES = [PAGE, *API_ROUTES]

#: Text that appears only in data from the store (modules, agents, amounts, the store's file).
DATA_WORDS = ("Finance", "reconcile", "close_books", "0.0274", "0.0021", "store.db")


@pytest.fixture(scope="module")
def served(airflow_db, tmp_path_factory) -> ApiServer:
    workdir: Path = tmp_path_factory.mktemp("api-server")
    store_url = f"sqlite:///{workdir / 'store.db'}"
    from airflow_agent_provider.stores.config import store_from_url

    store = store_from_url(store_url)
    charge(store)
    charge(store, dag_id=SECRET_DAG, calls=CALLS[:1], prefix="s")
    record_run(store)
    record_run(store, dag_id=SECRET_DAG, outcome="success", cost=0.0021, rate_limits=[])
    store.close()
    passwords = workdir / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    env = {
        **os.environ,
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.plugins.restricted_auth_manager.RestrictedSimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer,nobody:,restricted:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-only-" + os.urandom(24).hex(),
        "AIRFLOW__AGENT_PROVIDER__STORE_URL": store_url,
        "AAP_TEST_AUTH_DENY": json.dumps({"restricted": {"dags": [SECRET_DAG], "configuration": True}}),
    }
    server = start_api_server(env, workdir)
    server.store_url = store_url  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tokens(served) -> dict[str, str]:
    return {user: served.token(user, password) for user, password in PASSWORDS.items()}


def get(served: ApiServer, path: str, token: str | None = None, **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(served.url + path, headers=headers, timeout=30, **kwargs)


def assert_no_data(response: httpx.Response) -> None:
    for word in DATA_WORDS:
        assert word not in response.text, (response.request.url, word)


def test_no_session_is_401_on_every_route_and_gets_no_data(served):
    for path in ALL_ROUTES:
        response = get(served, path)
        assert response.status_code == 401, (path, response.text)
        assert response.json() == {"detail": "Not authenticated"}
        assert_no_data(response)
    # FastAPI's own schema and docs routes are off: nothing answers there either.
    for path in (f"{P}/openapi.json", f"{P}/docs", f"{P}/redoc"):
        assert get(served, path).status_code == 404, path


def test_a_browser_without_a_session_gets_a_sign_in_link(served):
    response = get(served, PAGE, headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert 'href="/auth/login?next=%2Fagent-provider%2F" target="_top">Sign in</a>' in response.text
    assert "<script" not in response.text
    assert_no_data(response)
    login = httpx.get(served.url + "/auth/login?next=%2Fagent-provider%2F", timeout=30)
    assert login.status_code == 200  # the link leads to SimpleAuthManager's login page


def test_forged_and_foreign_tokens_are_refused(served, tokens):
    claims = jwt.decode(tokens["viewer"], options={"verify_signature": False})
    header = jwt.get_unverified_header(tokens["viewer"])
    forged = jwt.encode(
        {**claims, "sub": "admin", "role": "ADMIN"},
        "not-the-servers-secret-" + "x" * 64,
        algorithm=header["alg"],
        headers={"kid": header.get("kid")},
    )
    for token in (forged, "not-a-jwt"):
        for path in (PAGE, DAG_ROUTES[0], FLEET_ROUTES[0]):
            response = get(served, path, token)
            assert response.status_code == 403, (path, response.text)
            assert response.json() == {"detail": "Invalid JWT token"}


def test_admin_reads_everything_with_a_bearer_token(served, tokens):
    for path in ALL_ROUTES:
        assert get(served, path, tokens["admin"]).status_code == 200, path
    costs = get(served, DAG_ROUTES[0], tokens["admin"]).json()
    assert costs["total"]["calls"] == 4
    assert costs["total"]["usd"] == pytest.approx(0.0274)
    secret = get(served, SECRET_ROUTES[0], tokens["admin"]).json()
    assert secret["total"]["calls"] == 1
    assert secret["total"]["usd"] == pytest.approx(0.0021)
    store = get(served, FLEET_ROUTES[0], tokens["admin"]).json()
    assert store["healthy"] is True
    assert store["url"] == served.store_url
    paths = get(served, OPENAPI, tokens["admin"]).json()["paths"]
    assert "/api/runs/{dag_id}/{run_id}/costs" in paths
    assert "/api/store" in paths


def test_the_ui_session_cookie_is_accepted(served, tokens):
    """The page runs under the Airflow origin: its fetches carry the ``_token`` cookie the UI set."""
    cookies = {"_token": tokens["viewer"]}
    page = httpx.get(served.url + PAGE, cookies=cookies, timeout=30)
    assert page.status_code == 200
    assert ">Cost per agent<" in page.text
    costs = httpx.get(served.url + DAG_ROUTES[0], cookies=cookies, timeout=30)
    assert costs.status_code == 200
    assert costs.json()["total"]["calls"] == 4
    # An explicit bearer token wins over the cookie (Airflow's rule): nobody's token is refused.
    both = httpx.get(
        served.url + DAG_ROUTES[0],
        cookies=cookies,
        timeout=30,
        headers={"Authorization": f"Bearer {tokens['nobody']}"},
    )
    assert both.status_code == 403


def test_a_user_without_a_role_gets_the_empty_page_and_403_from_every_api_route(served, tokens):
    page = get(served, PAGE, tokens["nobody"])
    assert page.status_code == 200
    assert_no_data(page)  # the page is a shell; its data comes from the API below
    for path in [*DAG_ROUTES, *SECRET_ROUTES, *FLEET_ROUTES]:
        response = get(served, path, tokens["nobody"])
        assert response.status_code == 403, (path, response.text)
        assert response.json() == {"detail": "Forbidden"}


def test_dag_read_is_checked_for_the_dag_in_the_path(served, tokens):
    for path in DAG_ROUTES:
        response = get(served, path, tokens["restricted"])
        assert response.status_code == 200, (path, response.text)
    assert get(served, DAG_ROUTES[0], tokens["restricted"]).json()["total"]["calls"] == 4
    for path in SECRET_ROUTES:
        response = get(served, path, tokens["restricted"])
        assert response.status_code == 403, (path, response.text)
        assert response.json() == {"detail": "Forbidden"}
        # A viewer of stock SimpleAuthManager reads every DAG, this one included.
        assert get(served, path, tokens["viewer"]).status_code == 200, path
    # Store-wide state needs the cluster activity view, which a Viewer has ...
    for path in FLEET_ROUTES:
        assert get(served, path, tokens["restricted"]).status_code == 200, path
    # ... but where the store is needs configuration read.
    hidden = get(served, FLEET_ROUTES[0], tokens["restricted"])
    assert hidden.json()["url"] is None
    assert "store.db" not in hidden.text
    assert get(served, FLEET_ROUTES[0], tokens["viewer"]).json()["url"] == served.store_url  # type: ignore[attr-defined]


def test_reads_on_the_real_server_leave_the_store_unchanged(served, tokens):
    watch = SQLiteWatch(served.store_url)  # type: ignore[attr-defined]
    try:

        def read_everything():
            for path in ALL_ROUTES:
                assert get(served, path, tokens["admin"]).status_code == 200, path

        assert watch.writes_during(read_everything) == []
    finally:
        watch.close()


def test_fleet_lists_show_only_the_dags_the_user_may_read(served, tokens):
    """The overview and the run list ask Airflow's auth manager per DAG (is_authorized_dag GET RUN)."""
    for user, expected in (("restricted", {DAG}), ("viewer", {DAG, SECRET_DAG})):
        overview = get(served, f"{P}/api/overview", tokens[user]).json()
        assert {w["dag_id"] for w in overview["workflows"]} == expected, user
        assert {r["dag_id"] for r in overview["runs"]} == expected, user
        assert {a["dag_id"] for a in overview["top_agents"]} == expected, user
        runs = get(served, f"{P}/api/runs", tokens[user]).json()["runs"]
        assert {r["dag_id"] for r in runs} == expected, user
    assert SECRET_DAG not in get(served, f"{P}/api/overview", tokens["restricted"]).text
    assert get(served, f"{P}/api/runs", tokens["nobody"]).json()["runs"] == []
