"""for_each in a real run: a static list, a list from an upstream's structured output, an empty list."""

from __future__ import annotations

import pytest

from airflow_agent_provider.factory import build_dag
from airflow_agent_provider.operators.result import RESULT_TASK_ID
from tests.control_flow._support import requests_with, workflow_from
from tests.fixtures.airflow_env import task_states, xcom_result

pytestmark = pytest.mark.airflow

SKUS_SCHEMA = {
    "type": "object",
    "properties": {"skus": {"type": "array", "items": {"type": "string"}}},
    "required": ["skus"],
    "additionalProperties": False,
}


def test_for_each_static_dynamic_empty_and_the_downstream_list(tmp_path, run_dag, llm_connections):
    workflow = workflow_from(
        tmp_path,
        {
            "name": "cf_for_each",
            "params": {"max_qty": {"type": "integer", "default": 40}},
            "modules": {
                "Inventory": {
                    "agents": [
                        {
                            "name": "find",
                            "output_schema": SKUS_SCHEMA,
                            "prompt": 'FIND [[json: {"skus": ["A-1", "B-2", "C-3"]}]]',
                        },
                        {
                            "name": "per_sku",
                            "dependencies": ["find"],
                            "for_each": "results.find.output.skus",
                            "prompt": "PER-SKU {{ item }} max {{ params.max_qty }}",
                        },
                        {
                            "name": "find_none",
                            "output_schema": SKUS_SCHEMA,
                            "prompt": 'NONE [[json: {"skus": []}]]',
                        },
                        {
                            "name": "per_none",
                            "dependencies": ["find_none"],
                            "for_each": "results.find_none.output.skus",
                            "prompt": "PER-NONE {{ item }}",
                        },
                    ]
                },
                "Compliance": {
                    "agents": [
                        {
                            "name": "per_policy",
                            "provider": "anthropic",
                            "model": "claude-haiku-4-5",
                            "for_each": ["SOD-01", "FIN-07"],
                            "prompt": "POLICY {{ item }} [[reply: policy {{ item }} ok]]",
                        },
                        {
                            "name": "summary",
                            "dependencies": ["per_policy", "Inventory.per_sku"],
                            "prompt": "SUMMARY n={{ results.per_sku | length }}"
                            "{% for r in results.per_sku %} {{ r.item }}{% endfor %}"
                            " | {% for r in results.per_policy %}{{ r.text }}; {% endfor %}",
                        },
                    ]
                },
            },
        },
    )
    dag = build_dag(workflow)
    assert dag.get_task("Inventory.per_sku__items").downstream_task_ids == {"Inventory.per_sku"}
    run = run_dag(dag)
    states = task_states(run)
    assert str(run.state) == "success", states
    assert {k: v for k, v in states.items() if k.startswith("Inventory.per_sku[")} == {
        "Inventory.per_sku[0]": "success",
        "Inventory.per_sku[1]": "success",
        "Inventory.per_sku[2]": "success",
    }
    assert states["Compliance.per_policy[0]"] == states["Compliance.per_policy[1]"] == "success"
    # An empty list: no task instance at all, the mapped agent is skipped by Airflow.
    assert states["Inventory.per_none"] == "skipped"

    stats = llm_connections.stats()
    # One request per item, each with its own item in the prompt.
    assert sorted(requests_with(stats, "PER-SKU")) == [f"PER-SKU {s} max 40" for s in ("A-1", "B-2", "C-3")]
    assert sorted(requests_with(stats, "POLICY ")) == [
        f"POLICY {p} [[reply: policy {p} ok]]" for p in ("FIN-07", "SOD-01")
    ]
    assert requests_with(stats, "PER-NONE") == []
    # The downstream got the lists in item order.
    (summary,) = requests_with(stats, "SUMMARY")
    assert summary.startswith("SUMMARY n=3 A-1 B-2 C-3 | policy SOD-01 ok; policy FIN-07 ok;")

    result = xcom_result(run, RESULT_TASK_ID)
    assert result["outcome"] == "success"
    per_sku = result["agents"]["Inventory.per_sku"]
    assert per_sku["mapped"] is True
    assert per_sku["status"] == "success"
    assert [i["item"] for i in per_sku["items"]] == ["A-1", "B-2", "C-3"]
    assert [i["map_index"] for i in per_sku["items"]] == [0, 1, 2]
    assert per_sku["usage"]["input_tokens"] == sum(i["usage"]["input_tokens"] for i in per_sku["items"]) > 0
    assert per_sku["cost_usd"] == pytest.approx(sum(i["cost_usd"] for i in per_sku["items"]))
    assert per_sku["rounds"] == 3
    assert len(per_sku["output"]) == 3
    assert all(i["duration_s"] is not None for i in per_sku["items"])
    policy = result["agents"]["Compliance.per_policy"]
    assert [i["item"] for i in policy["items"]] == ["SOD-01", "FIN-07"]
    assert [i["output"] for i in policy["items"]] == ["policy SOD-01 ok", "policy FIN-07 ok"]
    none = result["agents"]["Inventory.per_none"]
    assert none["status"] == "skipped"
    assert none["items"] == []
    assert none["reason"] == "for_each 'results.find_none.output.skus' gave an empty list"
    assert result["agents"]["Inventory.find"]["output"] == {"skus": ["A-1", "B-2", "C-3"]}
