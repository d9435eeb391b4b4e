"""The inventory_compliance example end to end (dag.test) against the local server.

The server answers structured output with a minimal valid instance (one array item, booleans true)
and tool calls with schema-generated arguments, so: ``find_reorders`` reports one SKU, the
condition ``len(skus) >= reorder_threshold`` (1) holds, ``reorder_sku`` runs once, ``policy_check``
runs per policy, and ``sign_off_memo``'s ``repeat_until`` (no open points) is never true: it stops
at ``max_iterations``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_agent_provider.definitions import parse_workflow
from airflow_agent_provider.factory import build_dag
from airflow_agent_provider.operators.result import RESULT_TASK_ID
from tests.control_flow._support import requests_with
from tests.fixtures.airflow_env import task_states, xcom_result

pytestmark = pytest.mark.airflow

EXAMPLE = Path(__file__).parents[2] / "dags" / "workflows" / "inventory_compliance.yaml"


def test_inventory_compliance_example_runs_green(tmp_path, run_dag, llm_connections):
    data = yaml.safe_load(EXAMPLE.read_text())
    data["name"] = "inventory_compliance_e2e"
    data["defaults"]["retries"] = {"attempts": 0}  # a retry would wait its delay; the run must pass without
    workflow = parse_workflow(
        yaml.safe_dump(data, sort_keys=False), tmp_path / "inventory_compliance_e2e.yaml"
    )
    run = run_dag(build_dag(workflow))
    states = task_states(run)
    assert str(run.state) == "success", states
    assert set(states.values()) == {"success"}, states
    assert "Inventory.reorder_sku[0]" in states
    assert "Inventory.reorder_sku[1]" not in states
    assert [k for k in states if k.startswith("Compliance.policy_check[")] == [
        "Compliance.policy_check[0]",
        "Compliance.policy_check[1]",
        "Compliance.policy_check[2]",
    ]

    result = xcom_result(run, RESULT_TASK_ID)
    assert result["outcome"] == "success"
    assert result["totals"]["cost_complete"]
    agents = result["agents"]
    assert agents["Inventory.find_reorders"]["output"] == {"skus": ["example"], "notes": "example"}
    reorder = agents["Inventory.reorder_sku"]
    assert [i["item"] for i in reorder["items"]] == ["example"]
    assert set(reorder["output"][0]) == {
        "sku",
        "order_quantity",
        "estimated_cost_eur",
        "urgency",
        "rationale",
    }
    policy = agents["Compliance.policy_check"]
    assert [i["item"] for i in policy["items"]] == ["SOD-01", "FIN-07", "INV-03"]
    assert all(o["status"] == "compliant" for o in policy["output"])
    memo = agents["Compliance.sign_off_memo"]
    assert memo["stopped"] == "max_iterations"
    assert memo["iterations"] == 3
    assert memo["rounds"] == 3
    assert len(requests_with(llm_connections.stats(), "revise your previous answer")) == 2
