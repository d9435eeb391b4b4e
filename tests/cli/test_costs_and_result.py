"""``airflow-agents costs`` (from the store's ledger) and ``result`` (from XCom) after a real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e._workflows import variant

pytestmark = pytest.mark.airflow


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "airflow_agent_provider.cli.main", *args],
        check=False,  # the tests assert the exit code themselves
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )


def test_costs_and_result_of_a_run(tmp_path, run_dag, llm_connections):
    workflow, dag = variant(tmp_path, "quickstart.yaml", "cli_costs")
    run = run_dag(dag)
    costs = _cli("costs", dag.dag_id, run.run_id)
    assert costs.returncode == 0, costs.stderr
    assert "Finance" in costs.stdout
    assert "Finance.payment_note" in costs.stdout
    assert "TOTAL" in costs.stdout
    as_json = json.loads(_cli("costs", dag.dag_id, run.run_id, "--json").stdout)
    assert as_json["total"]["calls"] == 3
    assert as_json["total"]["usd"] > 0

    latest = _cli("result", dag.dag_id)  # latest run by default
    assert latest.returncode == 0, latest.stderr
    assert "outcome success" in latest.stdout
    assert "Finance.cash_position" in latest.stdout
    whole = json.loads(_cli("result", dag.dag_id, run.run_id, "--json").stdout)
    assert whole["totals"]["cost_usd"] == pytest.approx(as_json["total"]["usd"])

    status = _cli("status", dag.dag_id, run.run_id, "--json")
    assert status.returncode == 0, status.stderr
    snapshot = json.loads(status.stdout)
    assert snapshot["found"]
    assert {m["model"] for m in snapshot["models"]} == {"gpt-5-mini"}
    assert all(m["breaker"] == "closed" for m in snapshot["models"])
    assert _cli("status", dag.dag_id).returncode == 0


def test_unknown_dag_gives_a_clear_error(airflow_db):
    proc = _cli("costs", "no_such_dag")
    assert proc.returncode == 1
    assert "no run of DAG 'no_such_dag'" in proc.stderr
    proc = _cli("result", "no_such_dag")
    assert proc.returncode == 1
    assert "no run of DAG 'no_such_dag'" in proc.stderr


def test_validate_reports_every_bad_file(tmp_path):
    (tmp_path / "ok.yaml").write_text(
        "name: ok\nmodules:\n  M:\n    agents:\n      - {name: a, prompt: hi, model: gpt-5-mini}\n"
    )
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nmodules:\n  M:\n    agents:\n      - {name: a, prompt: hi, modle: x}\n"
    )
    proc = _cli("validate", str(tmp_path))
    assert proc.returncode == 1
    assert "ok   " in proc.stdout
    assert "workflow ok" in proc.stdout
    assert "bad.yaml" in proc.stderr
    assert "modle" in proc.stderr
