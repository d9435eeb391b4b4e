"""Test session set-up shared by every test module.

Airflow reads AIRFLOW_HOME when it is first imported, so the environment is fixed here, before any
test module imports Airflow: a private AIRFLOW_HOME per test session (never the user's), no example
DAGs, and a private SQLite store for limits/budgets. Fixtures for real services live in
``tests/fixtures/`` and are registered as plugins below.
"""

from __future__ import annotations

import os
import tempfile

_SESSION_DIR = tempfile.mkdtemp(prefix="aap-tests-")
os.environ["AIRFLOW_HOME"] = os.path.join(_SESSION_DIR, "airflow")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False")
os.environ["AIRFLOW__AGENT_PROVIDER__STORE_URL"] = "sqlite:///" + os.path.join(_SESSION_DIR, "store.db")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(_SESSION_DIR, "dags")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.makedirs(os.environ["AIRFLOW_HOME"], exist_ok=True)
os.makedirs(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], exist_ok=True)

pytest_plugins = [
    "tests.fixtures.llm_server",
    "tests.fixtures.redis_server",
    "tests.fixtures.airflow_env",
]


#: Modules of a minute or more, in the order they start (``make test`` passes
#: ``--no-loadscope-reorder``, so xdist hands out modules in collection order, two per worker to
#: begin with): worker 1 takes the two native-stack modules one after the other (two stacks never
#: run at once on 2 cores), worker 2 the demo and the limit runs, and the short modules fill in
#: behind them instead of a long module forming the tail of the run.
HEAVY_MODULES_FIRST = (
    "tests/deploy/test_distributed.py",
    "tests/e2e/test_demo.py",
    "tests/deploy/test_fleet.py",
    "tests/e2e/test_limits_and_budget_runs.py",
)


def pytest_collection_modifyitems(session, config, items) -> None:
    rank = {path: index for index, path in enumerate(HEAVY_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))  # stable sort
