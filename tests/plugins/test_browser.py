"""The Costs views in a real browser, inside a real Airflow UI, after a real workflow run.

A small workflow (two modules, three agents, one optional agent that fails, budgets and a rate
limit) runs with ``dag.test()`` against the local LLM server, charging a private SQLite store;
then a real ``airflow api-server`` (SimpleAuthManager) serves the UI and the plugin over that
metadata DB and store, and headless Chromium (Debian's ``chromium``, driven by Playwright with
``executable_path``: no browser download) signs in through Airflow's login form, opens the run's
page, clicks its *Costs* tab, and reads the numbers in the plugin's iframe. They are checked
against the ledger and the ``workflow_result`` XCom; then the fleet overview (Browse entry) is
checked for the workflow's budget percentages and the rate-limit row. A screenshot of each view is
written to the test's output folder (``AAP_TEST_OUTPUT`` or the test's ``tmp_path``).

Chromium or Playwright missing is a failure, not a skip: ``make test`` installs both.
"""

from __future__ import annotations

import json
import os
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from airflow_agent_provider.operators.result import RESULT_TASK_ID
from tests.fixtures.airflow_env import xcom_result
from tests.fixtures.api_server import start_api_server

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(900)]

DAG_ID = "ui_costs_demo"
PASSWORD = "pw-browser-admin-1"
DAILY_BUDGET = 0.5
RATE_KEY = "openai/gpt-5-mini"

WORKFLOW = {
    "name": DAG_ID,
    "schedule": None,
    "allow_partial_completion": True,
    "cost_budget": 0.25,
    "daily_budget": DAILY_BUDGET,
    "monthly_budget": 5.0,
    "rate_limits": {RATE_KEY: {"requests_per_day": 1000, "tokens_per_minute": 200000, "max_concurrent": 2}},
    "defaults": {"model": "gpt-5-mini", "retries": {"attempts": 0}},
    "modules": {
        "Finance": {
            "cost_budget": 0.1,
            "agents": [
                {"name": "reconcile", "prompt": "Reconcile the November bank statement with the ledger."},
                {
                    "name": "close_books",
                    "prompt": "Close the books for November.",
                    "dependencies": ["reconcile"],
                },
            ],
        },
        "Audit": {
            "agents": [
                {"name": "spot_check", "critical": False, "prompt": "Spot-check invoices [[fail:400]]"}
            ],
        },
    },
}


def money(value: float) -> str:
    """The page's currency format (``money`` in page.py): 2 decimals from $1, 4 from 1 cent, else 6.

    Of the amount as the API sends it (rounded to the nano-dollar, the ledger's unit).
    Intl.NumberFormat rounds the shortest decimal form of the double half away from zero
    (0.0000375 -> 0.000038), which is Decimal(repr(x)) with ROUND_HALF_UP, not Python's ``:.6f``.
    """
    value = round(value, 9)
    digits = 2 if value == 0 or abs(value) >= 1 else 4 if abs(value) >= 0.01 else 6
    exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    text = f"{exact:,.{digits}f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"${whole}.{frac}"


def share(used: float, limit: float) -> str:
    """The page's percentage of a limit: one decimal, ``<0.1%`` for a spend too small to show as 0.1."""
    pct = round((used / limit) * 100, 1)
    return "<0.1%" if pct == 0 and used > 0 else f"{pct:.1f}%"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "headless Chromium is needed for this test: apt-get install -y chromium (Debian's package)"
    return path


@pytest.fixture
def output_dir(tmp_path) -> Path:
    folder = Path(os.environ.get("AAP_TEST_OUTPUT") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def private_store(tmp_path, monkeypatch):
    """A store of this test's own (so the overview shows only this run), for dag.test and the api-server."""
    from airflow_agent_provider.hooks.store import reset_store

    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__STORE_URL", url)
    reset_store()
    yield url
    reset_store()


def test_costs_views_in_the_airflow_ui(tmp_path, run_dag, llm_connections, private_store, output_dir):
    chromium = _chromium()
    from playwright.sync_api import expect, sync_playwright

    from airflow_agent_provider.cost.ledger import Ledger
    from airflow_agent_provider.factory import load_workflow_dags
    from airflow_agent_provider.hooks.store import get_store

    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / f"{DAG_ID}.yaml").write_text(yaml.safe_dump(WORKFLOW, sort_keys=False))
    dag = load_workflow_dags(folder)[DAG_ID]
    dag_run = run_dag(dag)
    result = xcom_result(dag_run, RESULT_TASK_ID)
    assert result["outcome"] == "partial", result
    run_id = dag_run.run_id
    assert "+" in run_id
    assert ":" in run_id

    store = get_store()
    ledger = Ledger(store).run_summary(DAG_ID, run_id)
    record = store.run_get(DAG_ID, run_id)
    assert record is not None
    assert record.budgets["daily"] == DAILY_BUDGET
    assert ledger.total.usd > 0
    assert ledger.total.usd == pytest.approx(result["totals"]["cost_usd"])
    day_spent = store.budget_totals(f"day:{DAG_ID}:{dag_run.start_date.strftime('%Y-%m-%d')}").spent
    # Every request took a permit of the rate limit, the refused (400) one too; only answered ones were charged.
    requests = llm_connections.stats()["by_model"]["gpt-5-mini"]
    assert requests == ledger.total.calls + 1

    workdir = tmp_path / "api"
    workdir.mkdir()
    (workdir / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
    server = start_api_server(
        {
            **os.environ,
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(workdir / "passwords.json"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__API_AUTH__JWT_SECRET": "test-only-" + os.urandom(24).hex(),
            "AIRFLOW__AGENT_PROVIDER__STORE_URL": private_store,
        },
        workdir,
    )
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                # Sign in through Airflow's own login form.
                page.goto(f"{server.url}/")
                page.locator("input[name=username]").fill("admin")
                page.locator("input[type=password]").fill(PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(lambda url: "/auth/" not in url, timeout=60_000)

                # The run's page in Airflow, then its Costs tab (the UI encodes the run id into the iframe URL).
                page.goto(f"{server.url}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}")
                page.get_by_role("link", name="Costs", exact=True).click()
                frame = page.frame_locator("iframe[title='Costs']")
                expect(frame.locator("body[data-loaded=run]")).to_be_attached(timeout=60_000)
                run_view = frame.locator("#run-view")
                expect(run_view).to_be_visible()
                kpis = frame.locator("#run-kpis")
                expect(kpis).to_contain_text(money(ledger.total.usd))
                expect(kpis).to_contain_text(money(WORKFLOW["cost_budget"]))
                expect(kpis).to_contain_text("partial")
                expect(frame.locator("#crumbs")).to_contain_text(run_id)
                rows = frame.locator("#run-agents tbody tr")
                expect(rows).to_have_count(3)
                # Sorted by cost, each agent's cost is the ledger's; the failed one says why.
                ordered = sorted(ledger.agents.items(), key=lambda kv: (-kv[1].usd, kv[0]))
                for index, (name, totals) in enumerate(ordered):
                    expect(rows.nth(index)).to_contain_text(name)
                    expect(rows.nth(index)).to_contain_text(money(totals.usd))
                    assert result["agents"][name]["cost_usd"] == pytest.approx(totals.usd)
                failed = frame.locator("#run-agents tbody tr", has_text="Audit.spot_check")
                expect(failed).to_contain_text("failed")
                expect(failed).to_contain_text(result["agents"]["Audit.spot_check"]["reason"][:40])
                finance = frame.locator("#run-modules tbody tr", has_text="Finance")
                expect(finance).to_contain_text(money(0.1))
                expect(finance).to_contain_text(share(ledger.modules["Finance"].usd, 0.1))
                expect(kpis).to_contain_text(share(ledger.total.usd, WORKFLOW["cost_budget"]))
                expect(frame.locator("#run-chart")).to_be_visible()
                link = frame.locator("#run-agents a", has_text="Finance.reconcile")
                assert link.get_attribute("href").endswith(
                    f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/Finance.reconcile"
                )
                page.wait_for_timeout(300)  # let the chart finish its first paint for the screenshot
                page.screenshot(path=str(output_dir / "run-costs.png"), full_page=True)

                # The fleet overview from the Browse menu entry.
                page.goto(f"{server.url}/plugin/agent-provider")
                frame = page.frame_locator("iframe[title='LLM Agents: costs & limits']")
                expect(frame.locator("body[data-loaded=overview]")).to_be_attached(timeout=60_000)
                workflow_row = frame.locator("#workflows tbody tr", has_text=DAG_ID)
                expect(workflow_row).to_contain_text(money(day_spent))
                expect(workflow_row).to_contain_text(share(day_spent, DAILY_BUDGET))
                expect(workflow_row).to_contain_text(money(DAILY_BUDGET))
                expect(workflow_row).to_contain_text("partial")
                limit_row = frame.locator("#limits tbody tr", has_text="requests per day")
                expect(limit_row).to_contain_text(RATE_KEY)
                expect(limit_row).to_contain_text(f"{requests} / 1,000")
                expect(limit_row).to_contain_text("0 / 2")  # leases: none held after the run
                expect(frame.locator("#runs tbody tr", has_text=run_id)).to_contain_text(
                    money(ledger.total.usd)
                )
                expect(frame.locator("#store-health")).to_contain_text("healthy")
                page.wait_for_timeout(300)
                page.screenshot(path=str(output_dir / "fleet-overview.png"), full_page=True)

                # The workflow's Costs tab on the DAG page.
                page.goto(f"{server.url}/dags/{DAG_ID}")
                page.get_by_role("link", name="Costs", exact=True).click()
                frame = page.frame_locator("iframe[title='Costs']")
                expect(frame.locator("body[data-loaded=dag]")).to_be_attached(timeout=60_000)
                expect(frame.locator("#dag-budgets")).to_contain_text(share(day_spent, DAILY_BUDGET))
                page.wait_for_timeout(300)
                page.screenshot(path=str(output_dir / "workflow-costs.png"), full_page=True)

                # Deep link from outside Airflow, with a typo in the DAG id: it says so.
                page.goto(
                    f"{server.url}/agent-provider/?view=run&dag_id={DAG_ID}x&run_id={quote(run_id, safe='')}"
                )
                expect(page.locator("#message")).to_contain_text(f"unknown DAG '{DAG_ID}x'")
                page.screenshot(path=str(output_dir / "unknown-dag.png"), full_page=True)

                # Dark mode follows Airflow's colour mode.
                page.evaluate("localStorage.setItem('theme', 'dark')")
                page.goto(
                    f"{server.url}/agent-provider/?view=run&dag_id={DAG_ID}&run_id={quote(run_id, safe='')}"
                )
                expect(page.locator("body[data-loaded=run]")).to_be_attached(timeout=60_000)
                assert page.evaluate("document.documentElement.classList.contains('dark')")
                page.wait_for_timeout(300)
                page.screenshot(path=str(output_dir / "run-costs-dark.png"), full_page=True)
            except Exception:
                page.screenshot(path=str(output_dir / "failure.png"), full_page=True)
                raise
            finally:
                browser.close()
    except Exception:
        print(server.log_tail())
        raise
    finally:
        server.stop()
    print(f"screenshots in {output_dir}")
