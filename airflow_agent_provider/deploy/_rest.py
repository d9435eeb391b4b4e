"""
The Airflow REST API of a running deployment, as the launcher's tests and benchmarks use it.

Authenticates with the admin user (a JWT from ``POST /auth/token``, fetched again once on a 401),
and wraps the few calls a test needs: wait until a DAG is parsed, trigger a run, wait for it, list
its task instances.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
from collections.abc import Callable
from typing import Any

from airflow_agent_provider.deploy._probes import http_json
from airflow_agent_provider.deploy.auth import fetch_token
from airflow_agent_provider.deploy.processes import wait_until

TERMINAL_STATES = {"success", "failed"}

#: Runs read per state poll: the prefix filters match the run and any run whose ids extend its ids.
RUN_LIST_LIMIT = 100


class RestClient:
    """
    The REST API at ``api_url`` as ``user``.

    :param password: Returns the user's password when a token is needed (read late: the secrets
        file is written by the deployment's ``up``).
    """

    def __init__(self, api_url: str, user: str, password: Callable[[], str]) -> None:
        self.api_url = api_url
        self._user = user
        self._password = password
        self._token: str | None = None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One API call (``path`` below the API URL), JSON in and out."""
        for attempt in range(2):
            if self._token is None:
                self._token = fetch_token(self.api_url, self._user, self._password())
            try:
                return http_json(self.api_url + path, method=method, body=body, token=self._token, timeout=30)
            except urllib.error.HTTPError as err:
                if err.code == 401 and attempt == 0:
                    self._token = None
                    continue
                raise
        raise AssertionError("unreachable")

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` (it is in the API)."""
        quoted = urllib.parse.quote(dag_id)
        wait_until(lambda: self.call("GET", f"/api/v2/dags/{quoted}") is not None, timeout, f"DAG {dag_id}")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a run through the REST API; returns its run_id."""
        self.wait_for_dag(dag_id)
        run = self.call(
            "POST",
            f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns",
            {"logical_date": None, "conf": conf or {}},
        )
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        """
        The run's state, read from the list of all DAGs' runs rather than from the run itself.

        A state poll must not load the API server, which also answers the workers' execution API.
        In Airflow 3.3 the single-run endpoint fills the run's ``dag_versions`` by loading every
        task instance of the run through the ORM (0.1-1.6 s of the API server's CPU per call on a
        500-task run), and the one-DAG run list deserializes the whole DAG to check that it exists
        (about 50 ms on the same DAG). The ``~`` list does neither: it prefetches the versions in
        one light query. Its prefix filters also match longer ids, so the exact run is picked here;
        a run the filtered list does not hold goes to the single-run endpoint (404 for none).
        """
        query = urllib.parse.urlencode(
            {"dag_id_prefix_pattern": dag_id, "run_id_prefix_pattern": run_id, "limit": RUN_LIST_LIMIT}
        )
        for run in self.call("GET", f"/api/v2/dags/~/dagRuns?{query}")["dag_runs"]:
            if run["dag_id"] == dag_id and run["dag_run_id"] == run_id:
                return str(run["state"])
        path = f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/{urllib.parse.quote(run_id)}"
        return str(self.call("GET", path)["state"])

    def wait(self, dag_id: str, run_id: str, timeout: float = 300.0) -> str:
        """Poll the run until it finishes; returns its final state."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_STATES:
                return state
            time.sleep(1.0)
        raise TimeoutError(f"{dag_id}/{run_id} still {state!r} after {timeout:.0f} s")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (task_id, map_index, state, hostname, pid, start/end dates)."""
        items: list[dict[str, Any]] = []
        base = f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances"
        while True:
            page = self.call("GET", f"{base}?limit=100&offset={len(items)}")
            items.extend(page["task_instances"])
            if not page["task_instances"] or len(items) >= page["total_entries"]:
                return items


__all__ = ["TERMINAL_STATES", "RestClient"]
