"""Run parameters: DAG Params with defaults, used in prompts and conditions, overridden by a run's conf."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import ParamValidationError

from airflow_agent_provider.factory import build_dag
from airflow_agent_provider.operators.result import RESULT_TASK_ID
from tests.control_flow._support import requests_with, workflow_from
from tests.fixtures.airflow_env import task_states, xcom_result

pytestmark = pytest.mark.airflow


def _workflow(tmp_path):
    return workflow_from(
        tmp_path,
        {
            "name": "cf_params",
            "params": {
                "region": {
                    "type": "string",
                    "default": "EU",
                    "enum": ["EU", "US"],
                    "description": "Sales region",
                },
                "top_n": {"type": "integer", "default": 3, "minimum": 1, "maximum": 10},
            },
            "modules": {
                "Sales": {
                    "agents": [
                        {
                            "name": "report",
                            "prompt": "REPORT region={{ params.region }} top={{ params.top_n }}",
                        },
                        {
                            "name": "us_only",
                            "condition": "params.region == 'US'",
                            "prompt": "US-ONLY top={{ params.top_n }}",
                        },
                    ]
                }
            },
        },
    )


def test_params_become_dag_params_with_their_schema(tmp_path):
    dag = build_dag(_workflow(tmp_path))
    region = dag.params.get_param("region")
    assert region.value == "EU"
    assert region.schema["enum"] == ["EU", "US"]
    assert region.description == "Sales region"
    assert dag.params.get_param("top_n").schema == {"type": "integer", "minimum": 1, "maximum": 10}


def test_defaults_and_conf_override_in_prompt_and_condition(tmp_path, run_dag, llm_connections):
    dag = build_dag(_workflow(tmp_path))
    run = run_dag(dag)
    assert task_states(run)["Sales.us_only"] == "skipped"
    assert xcom_result(run, RESULT_TASK_ID)["outcome"] == "success"
    assert requests_with(llm_connections.stats(), "REPORT") == ["REPORT region=EU top=3"]

    llm_connections.reset()
    run = run_dag(dag, run_conf={"region": "US", "top_n": 5})
    states = task_states(run)
    assert states["Sales.us_only"] == "success"
    assert str(run.state) == "success"
    stats = llm_connections.stats()
    assert requests_with(stats, "REPORT") == ["REPORT region=US top=5"]
    assert requests_with(stats, "US-ONLY") == ["US-ONLY top=5"]


def test_invalid_conf_is_rejected_before_anything_runs(tmp_path, run_dag, llm_connections):
    dag = build_dag(_workflow(tmp_path))
    with pytest.raises(
        ParamValidationError, match=r"Invalid input for param region: 'XX' is not one of \['EU', 'US'\]"
    ):
        run_dag(dag, run_conf={"region": "XX"})
    with pytest.raises(ParamValidationError, match=r"param top_n: 11 is greater than the maximum of 10"):
        run_dag(dag, run_conf={"top_n": 11})
    assert llm_connections.stats()["requests"] == 0
