"""Conditions in a real run: branch taken and skipped, and what each trigger rule does with a skip.

One workflow (partial completion on) shows every case at once:

=====================  ===================================  ==========================================
agent                  what happens                         why
=====================  ===================================  ==========================================
``taken``              runs                                 condition true (reads a param and a result)
``not_taken``          skipped, no request                  condition false (critical agent)
``after_not_taken``    skipped (trigger rule all_success)   its only upstream was skipped
``optional_off``       skipped, no request                  condition false (non-critical agent)
``after_optional_off`` runs (all_done), sees status skipped  non-critical upstream -> all_done
``optional_broken``    failed                               HTTP 400
``after_broken``       runs (all_done), sees unavailable    same rule; a failure is not a skip
=====================  ===================================  ==========================================
"""

from __future__ import annotations

import pytest

from airflow_agent_provider.factory import build_dag
from airflow_agent_provider.operators.result import RESULT_TASK_ID
from tests.control_flow._support import requests_with, workflow_from
from tests.fixtures.airflow_env import task_states, xcom_result

pytestmark = pytest.mark.airflow


def _branching(tmp_path, name: str):
    return workflow_from(
        tmp_path,
        {
            "name": name,
            "allow_partial_completion": True,
            "params": {
                "threshold": {"type": "integer", "default": 2},
                "enable_extra": {"type": "boolean", "default": False},
            },
            "modules": {
                "Ops": {
                    "agents": [
                        {"name": "source", "prompt": "SOURCE [[reply: three findings]]"},
                        {
                            "name": "taken",
                            "dependencies": ["source"],
                            "condition": "params.threshold >= 2 and 'three' in results.source.text",
                            "prompt": "TAKEN {{ results.source.text }}",
                        },
                        {
                            "name": "not_taken",
                            "dependencies": ["source"],
                            "condition": "params.threshold > 5",
                            "prompt": "NOT-TAKEN never sent",
                        },
                        {
                            "name": "after_not_taken",
                            "dependencies": ["not_taken"],
                            "prompt": "AFTER-NOT-TAKEN x",
                        },
                        {
                            "name": "optional_off",
                            "critical": False,
                            "condition": "params.enable_extra",
                            "prompt": "OPTIONAL-OFF never sent",
                        },
                        {
                            "name": "after_optional_off",
                            "dependencies": ["optional_off"],
                            "prompt": "AFTER-OPTIONAL-OFF status={{ results.optional_off.status }} "
                            "reason={{ results.optional_off.reason }}",
                        },
                        {"name": "optional_broken", "critical": False, "prompt": "BROKEN [[fail:400]]"},
                        {
                            "name": "after_broken",
                            "dependencies": ["optional_broken"],
                            "prompt": "AFTER-BROKEN status={{ results.optional_broken.status }}",
                        },
                    ]
                }
            },
        },
    )


def test_branches_skip_propagation_and_partial_completion(tmp_path, run_dag, llm_connections):
    workflow = _branching(tmp_path, "cf_branching")
    dag = build_dag(workflow)
    rules = {t.task_id: str(getattr(t.trigger_rule, "value", t.trigger_rule)) for t in dag.tasks}
    assert rules["Ops.after_not_taken"] == "all_success"
    assert rules["Ops.after_optional_off"] == "all_done"
    assert rules["Ops.after_broken"] == "all_done"

    run = run_dag(dag)
    states = task_states(run)
    assert states == {
        "Ops.source": "success",
        "Ops.taken": "success",
        "Ops.not_taken": "skipped",
        "Ops.after_not_taken": "skipped",
        "Ops.optional_off": "skipped",
        "Ops.after_optional_off": "success",
        "Ops.optional_broken": "failed",
        "Ops.after_broken": "success",
        RESULT_TASK_ID: "success",
    }
    assert str(run.state) == "success"
    stats = llm_connections.stats()
    # A false condition is decided before any model call.
    assert requests_with(stats, "NOT-TAKEN") == []
    assert requests_with(stats, "OPTIONAL-OFF never") == []
    assert requests_with(stats, "AFTER-NOT-TAKEN") == []
    assert requests_with(stats, "TAKEN three findings")
    # The all_done dependants saw what happened upstream: a skip with its reason, or no result.
    (after_off,) = requests_with(stats, "AFTER-OPTIONAL-OFF")
    assert "status=skipped reason=condition 'params.enable_extra' was false" in after_off
    (after_broken,) = requests_with(stats, "AFTER-BROKEN")
    assert "status=unavailable" in after_broken

    result = xcom_result(run, RESULT_TASK_ID)
    agents = result["agents"]
    # The failed optional agent makes the run partial; the skips alone would not.
    assert result["outcome"] == "partial"
    assert agents["Ops.not_taken"]["status"] == "skipped"
    assert agents["Ops.not_taken"]["reason"] == "condition 'params.threshold > 5' was false"
    assert agents["Ops.after_not_taken"]["reason"] == (
        "not run: upstream Ops.not_taken was skipped (condition 'params.threshold > 5' was false)"
    )
    assert agents["Ops.optional_off"]["reason"] == "condition 'params.enable_extra' was false"
    assert agents["Ops.optional_broken"]["status"] == "failed"
    assert "400" in agents["Ops.optional_broken"]["reason"]
    assert agents["Ops.taken"]["duration_s"] is not None
    assert agents["Ops.taken"]["duration_s"] >= 0
    assert agents["Ops.taken"]["output"].startswith("[")  # the echo of the local server


def test_only_condition_skips_keep_the_outcome_success(tmp_path, run_dag, llm_connections):
    workflow = workflow_from(
        tmp_path,
        {
            "name": "cf_only_skips",
            "params": {"go": {"type": "boolean", "default": False}},
            "modules": {
                "Ops": {
                    "agents": [
                        {"name": "always", "prompt": "ALWAYS [[reply: fine]]"},
                        {"name": "gated", "condition": "params.go", "prompt": "GATED never sent"},
                        {"name": "behind", "dependencies": ["gated"], "prompt": "BEHIND never sent"},
                    ]
                }
            },
        },
    )
    run = run_dag(build_dag(workflow))
    states = task_states(run)
    assert states["Ops.gated"] == "skipped"
    assert states["Ops.behind"] == "skipped"
    assert str(run.state) == "success"
    result = xcom_result(run, RESULT_TASK_ID)
    assert result["outcome"] == "success"
    assert result["agents"]["Ops.gated"]["reason"] == "condition 'params.go' was false"
    assert requests_with(llm_connections.stats(), "never sent") == []
