"""The inventory_compliance example end to end: built by the dags-folder loader, run with dag.test()."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_agent_provider.definitions import parse_workflow
from airflow_agent_provider.factory import build_dag
from airflow_agent_provider.operators.result import RESULT_TASK_ID
from tests.fixtures.airflow_env import task_states, xcom_result

pytestmark = pytest.mark.airflow

EXAMPLE = Path(__file__).parents[2] / "dags" / "workflows" / "inventory_compliance.yaml"


def test_inventory_compliance_example_runs_green(tmp_path, run_dag, llm_connections):
    data = yaml.safe_load(EXAMPLE.read_text())
    data["name"] = "inventory_compliance_e2e"
    data["defaults"]["retries"] = {"attempts": 0}  # a retry would wait its delay; the run must pass without
    workflow = parse_workflow(yaml.safe_dump(data, sort_keys=False), tmp_path / "inventory_compliance_e2e.yaml")
    run = run_dag(build_dag(workflow, {"erp_month_end": "agent-workflow://erp_month_end"}))
    states = task_states(run)
    result = xcom_result(run, RESULT_TASK_ID)
    print(states)
    import json; print(json.dumps(result, indent=1)[:6000])
    assert str(run.state) == "success", states
