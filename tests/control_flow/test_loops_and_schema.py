"""repeat_until loops and structured outputs in a real run (requests counted on the local server)."""

from __future__ import annotations

import pytest

from airflow_agent_provider.factory import build_dag
from airflow_agent_provider.operators.result import RESULT_TASK_ID
from tests.control_flow._support import requests_with, workflow_from
from tests.fixtures.airflow_env import task_states, xcom_result

pytestmark = pytest.mark.airflow

TOTAL = {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]}
DONE = {"type": "object", "properties": {"done": {"type": "boolean"}}, "required": ["done"]}
QUICK_RETRY = {"attempts": 1, "base_delay": "1s", "max_delay": "1s", "jitter": False}


def test_loops_stop_on_condition_and_max_iterations_and_outputs_are_validated(
    tmp_path, run_dag, llm_connections
):
    workflow = workflow_from(
        tmp_path,
        {
            "name": "cf_loops_schema",
            "allow_partial_completion": True,
            "modules": {
                "Loops": {
                    "agents": [
                        {
                            "name": "until_condition",
                            "repeat_until": "'it=2' in last.text",
                            "max_iterations": 5,
                            "prompt": "LOOP-COND it={{ iteration }}{% if last %} prev={{ last.text }}{% endif %}",
                        },
                        {
                            "name": "until_max",
                            "output_schema": DONE,
                            "repeat_until": "last.output.done",
                            "max_iterations": 3,
                            "prompt": 'LOOP-MAX it={{ iteration }} [[json: {"done": false}]]',
                        },
                        {
                            "name": "deferred_loop",
                            "provider": "anthropic",
                            "model": "claude-haiku-4-5",
                            "deferrable": True,
                            "repeat_until": "iteration >= 2",
                            "prompt": "LOOP-DEFER it={{ iteration }}",
                        },
                        {
                            # Iteration 2's first call fails; the retry resumes at iteration 2.
                            "name": "resumed_loop",
                            "retries": QUICK_RETRY,
                            "call_retries": {"max_attempts": 1},
                            "repeat_until": "iteration >= 2",
                            "prompt": "LOOP-RESUME it={{ iteration }}{% if iteration == 2 %} [[fail:500 x1]]{% endif %}",
                        },
                    ]
                },
                "Schema": {
                    "agents": [
                        {
                            "name": "valid",
                            "output_schema": TOTAL,
                            "prompt": 'VALID [[json: {"total": 12.5}]]',
                        },
                        {
                            "name": "valid_anthropic",
                            "provider": "anthropic",
                            "model": "claude-haiku-4-5",
                            "output_schema": TOTAL,
                            "prompt": "VALID-ANTHROPIC total please",
                        },
                        {
                            "name": "wrong_type",
                            "critical": False,
                            "retries": QUICK_RETRY,
                            "output_schema": TOTAL,
                            "prompt": 'WRONG-TYPE [[json: {"total": "lots"}]]',
                        },
                        {
                            "name": "not_json",
                            "critical": False,
                            "output_schema": TOTAL,
                            "prompt": "NOT-JSON [[json: total is twelve]]",
                        },
                    ]
                },
            },
        },
    )
    run = run_dag(build_dag(workflow))
    states = task_states(run)
    stats = llm_connections.stats()
    result = xcom_result(run, RESULT_TASK_ID)
    agents = result["agents"]

    # Stops as soon as repeat_until is true; the next turn saw the previous answer as `last`.
    cond = requests_with(stats, "LOOP-COND")
    assert len(cond) == 2
    assert cond[1].startswith("Iteration 2 of at most 5: revise your previous answer.")
    assert "LOOP-COND it=2 prev=[gpt-5-mini] LOOP-COND it=1" in cond[1]
    assert agents["Loops.until_condition"]["iterations"] == 2
    assert agents["Loops.until_condition"]["stopped"] is None
    # Never true: exactly max_iterations requests, then stopped.
    assert len(requests_with(stats, "LOOP-MAX")) == 3
    assert agents["Loops.until_max"]["stopped"] == "max_iterations"
    assert agents["Loops.until_max"]["iterations"] == 3
    assert agents["Loops.until_max"]["output"] == {"done": False}
    assert agents["Loops.until_max"]["rounds"] == 3
    # Deferred: each iteration goes through the trigger and comes back.
    assert len(requests_with(stats, "LOOP-DEFER")) == 2
    assert agents["Loops.deferred_loop"]["iterations"] == 2
    assert len(requests_with(stats, "LOOP-DEFER it=2")) == 1  # re-rendered after resuming from the trigger
    # Retry resumes from task_state_store: iteration 1 is not paid again.
    assert states["Loops.resumed_loop"] == "success"
    assert len(requests_with(stats, "LOOP-RESUME it=1")) == 1
    assert len(requests_with(stats, "LOOP-RESUME it=2")) == 2  # the failed call and the retry's call
    assert agents["Loops.resumed_loop"]["iterations"] == 2

    # Structured output: parsed and validated data in `output`.
    assert agents["Schema.valid"]["output"] == {"total": 12.5}
    assert agents["Schema.valid_anthropic"]["output"] == {"total": 1.0}  # the server's minimal instance
    # A reply that violates the schema fails after the task's retry (it is transient), naming the path.
    assert states["Schema.wrong_type"] == "failed"
    assert len(requests_with(stats, "WRONG-TYPE")) == 2
    reason = agents["Schema.wrong_type"]["reason"]
    assert "agent Schema.wrong_type" in reason
    assert "at $.total" in reason
    assert "'lots' is not of type 'number'" in reason
    assert states["Schema.not_json"] == "failed"
    assert "not valid JSON" in agents["Schema.not_json"]["reason"]
    assert result["outcome"] == "partial"
    assert str(run.state) == "success"
