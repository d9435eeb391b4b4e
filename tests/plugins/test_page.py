"""The HTML page: self-contained, locked down by CSP, and served by uvicorn under the plugin prefix."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from airflow_agent_provider.plugins.api import create_app
from tests.plugins.conftest import DAG, RUN, TEST_ACCESS

HEADINGS = [
    "Workflows: spend against budgets",
    "Daily spend, last 30 days",
    "Recent runs",
    "Most expensive agents",
    "Most expensive models",
    "Rate limits: current use",
    "Open breakers",
    "Active pauses",
    "Budgets",
    "Cost per agent",
    "Agents",
    "Modules against their budgets",
    "Answered by",
    "Fallbacks",
    "Reason",
]


def test_page_renders_with_table_headings_and_no_external_assets(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for heading in HEADINGS:
        assert f">{heading}<" in html, heading
    assert (
        "<title>LLM Agents: costs &amp; limits</title>" in html
        or "<title>LLM Agents: costs & limits</title>" in html
    )
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert '<script nonce="' in html
    assert 'src="static/chart.umd.min.js"' in html
    assert "<link" not in html
    assert "@import" not in html
    assert "innerHTML" not in html  # values go in with textContent only


def test_page_csp_nonce_matches_inline_script_and_changes_per_response(client):
    first, second = client.get("/"), client.get("/")
    csp = first.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'<script nonce="{nonce}">' in first.text
    assert f'<style nonce="{nonce}">' in first.text
    assert f'<script nonce="{nonce}" src="static/chart.umd.min.js">' in first.text
    assert "style=" not in first.text  # inline style attributes would be refused by the CSP
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert nonce not in second.headers["content-security-policy"]


@pytest.fixture
def served(spent_store, store_url) -> Iterator[str]:
    """The app mounted at /agent-provider in a parent app (as Airflow's API server does), on uvicorn."""
    parent = FastAPI()
    parent.mount("/agent-provider", create_app(lambda: spent_store, lambda: store_url, access=TEST_ACCESS))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(parent, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_served_under_the_plugin_prefix(served):
    with httpx.Client(base_url=served, headers={"Authorization": "Bearer admin"}) as http:
        redirect = http.get("/agent-provider")
        assert redirect.status_code in (307, 308)
        assert redirect.headers["location"].endswith("/agent-provider/")
        page = http.get("/agent-provider/")
        assert page.status_code == 200
        assert ">Cost per agent<" in page.text
        chart = http.get("/agent-provider/static/chart.umd.min.js")
        assert chart.status_code == 200
        assert chart.headers["content-type"].startswith("text/javascript")
        assert chart.text.startswith("/*!\n * Chart.js v4")
        # The page fetches relative URLs; these are what they resolve to under the prefix.
        run = RUN.replace("+", "%2B").replace(":", "%3A")
        costs = http.get(f"/agent-provider/api/runs/{DAG}/{run}/snapshot")
        assert costs.status_code == 200
        assert costs.json()["costs"]["total"]["calls"] == 4
        assert http.get("/agent-provider/api/store").json()["healthy"] is True
        assert http.get("/agent-provider/api/breakers/openai/gpt-5-mini").json()["state"] == "closed"
        assert http.get("/agent-provider/api/openapi.json").status_code == 200
        assert http.get("/agent-provider/docs").status_code == 404
