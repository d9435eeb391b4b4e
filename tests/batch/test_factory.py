"""The DAG of a workflow with batch agents: groups per provider/model/layer, submit tasks and their edges."""

from __future__ import annotations

from airflow_agent_provider.factory import build_dag
from airflow_agent_provider.factory.batch import batch_groups, dependency_layers
from airflow_agent_provider.operators.batch import BatchAgentOperator
from airflow_agent_provider.operators.batch_submit import BatchSubmitOperator
from tests.control_flow._support import workflow_from


def _workflow(tmp_path):
    return workflow_from(
        tmp_path,
        {
            "name": "batch_groups",
            "modules": {
                "Close": {
                    "delivery": "batch",
                    "agents": [
                        {"name": "a", "prompt": "A"},
                        {"name": "b", "prompt": "B"},
                        {"name": "c", "prompt": "C", "provider": "anthropic", "model": "claude-haiku-4-5"},
                        {"name": "d", "prompt": "D {{ results.a.text }}", "dependencies": ["a"]},
                        {"name": "e", "prompt": "E {{ item }}", "for_each": ["x", "y"]},
                    ],
                },
                "Report": {
                    "agents": [
                        {"name": "summary", "prompt": "S", "dependencies": ["Close.d", "Close.b"]},
                        {"name": "late", "prompt": "L", "delivery": "batch", "dependencies": ["summary"]},
                    ]
                },
            },
        },
    )


def test_layers_and_groups(tmp_path):
    wf = _workflow(tmp_path)
    layers = dependency_layers(wf)
    assert layers["Close.a"] == 0
    assert layers["Close.d"] == 1
    assert layers["Report.summary"] == 2
    assert layers["Report.late"] == 3
    groups = {g.task_id: g.members for g in batch_groups(wf)}
    assert groups == {
        "batch__openai__gpt-5-mini__L0": ["Close.a", "Close.b", "Close.e"],
        "batch__anthropic__claude-haiku-4-5__L0": ["Close.c"],
        "batch__openai__gpt-5-mini__L1": ["Close.d"],
        "batch__openai__gpt-5-mini__L3": ["Report.late"],
    }


def test_dag_wiring_across_delivery_modes(tmp_path):
    dag = build_dag(_workflow(tmp_path))
    submit = dag.get_task("batch__openai__gpt-5-mini__L0")
    assert isinstance(submit, BatchSubmitOperator)
    assert getattr(submit.trigger_rule, "value", submit.trigger_rule) == "all_done"
    assert submit.downstream_task_ids == {"Close.a", "Close.b", "Close.e"}
    assert isinstance(dag.get_task("Close.a"), BatchAgentOperator)
    assert dag.get_task("Close.e").is_mapped
    # the second layer's submit waits for the first layer's agent it reads
    assert dag.get_task("batch__openai__gpt-5-mini__L1").upstream_task_ids == {"Close.a"}
    # a realtime summary reads batch agents; a batch agent reads the realtime summary
    assert {"Close.d", "Close.b"} <= dag.get_task("Report.summary").upstream_task_ids
    assert dag.get_task("batch__openai__gpt-5-mini__L3").upstream_task_ids == {"Report.summary"}
    assert not isinstance(dag.get_task("Report.summary"), BatchAgentOperator)
    late = dag.get_task("Report.late")
    assert late.batch_task_id == "batch__openai__gpt-5-mini__L3"
    assert late.execution_mode == "worker"
    assert not late.start_from_trigger


def test_no_batch_agents_no_submit_tasks(tmp_path):
    wf = workflow_from(
        tmp_path, {"name": "rt_only", "modules": {"M": {"agents": [{"name": "a", "prompt": "A"}]}}}
    )
    dag = build_dag(wf)
    assert not [t for t in dag.task_ids if t.startswith("batch__")]
