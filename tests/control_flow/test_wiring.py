"""How control-flow fields become DAG structure and operator arguments, and the pure helpers (no runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_agent_provider.definitions import load_workflow
from airflow_agent_provider.factory import build_dag
from airflow_agent_provider.factory.builder import upstream_aliases
from airflow_agent_provider.operators.agent import LLMAgentOperator
from airflow_agent_provider.operators.control_flow import (
    OutputValidationError,
    flat_upstream_text,
    validate_output,
)
from airflow_agent_provider.operators.result import RESULT_TASK_ID, compile_result
from airflow_agent_provider.operators.retry_policy import AgentRetryPolicy
from airflow_agent_provider.resilience.classify import classify
from tests.control_flow._support import workflow_from

EXAMPLE = Path(__file__).parents[2] / "dags" / "workflows" / "inventory_compliance.yaml"


def test_example_structure_mapping_items_task_schema_and_assets():
    dag = build_dag(load_workflow(EXAMPLE))
    find = dag.get_task("Inventory.find_reorders")
    assert find.output_schema["required"] == ["skus", "notes"]
    items = dag.get_task("Inventory.reorder_sku__items")
    assert items.expression == "results.find_reorders.output.skus"
    reorder = dag.get_task("Inventory.reorder_sku")
    assert reorder.is_mapped
    assert reorder.upstream_task_ids == {"Inventory.find_reorders", items.task_id}
    assert reorder.partial_kwargs["condition"].startswith("len(results.find_reorders.output.skus)")
    # A pydantic model's dotted path arrives as its JSON schema.
    assert reorder.partial_kwargs["output_schema"]["title"] == "ReorderProposal"
    policy = dag.get_task("Compliance.policy_check")
    assert policy.is_mapped
    assert policy.expand_input.value == {"item": ["SOD-01", "FIN-07", "INV-03"]}
    memo = dag.get_task("Compliance.sign_off_memo")
    assert memo.repeat_until.startswith("last.output.complete")
    assert memo.max_iterations == 3
    # Cross-module dependencies are reachable by plain name too (validation allows results.find_reorders).
    assert policy.partial_kwargs["upstream_tasks"]["find_reorders"] == "Inventory.find_reorders"
    result = dag.get_task(RESULT_TASK_ID)
    assert result.agents["Inventory.reorder_sku"] == {
        "module": "Inventory",
        "agent": "reorder_sku",
        "critical": True,
        "mapped": True,
        "items_task": "Inventory.reorder_sku__items",
    }
    assert result.agents["Compliance.policy_check"]["items"] == ["SOD-01", "FIN-07", "INV-03"]
    assert [o.uri.rstrip("/") for o in result.outlets] == ["agent-workflow://inventory_compliance"]
    assert [a.uri.rstrip("/") for a in dag.timetable.asset_condition.objects] == [
        "agent-workflow://erp_month_end"
    ]
    assert set(dag.params.keys()) == {"reorder_threshold", "max_order_value_eur"}


def test_items_task_name_clash_is_a_clear_error(tmp_path):
    workflow = workflow_from(
        tmp_path,
        {
            "name": "clash",
            "modules": {
                "M": {
                    "agents": [
                        {
                            "name": "src",
                            "prompt": "p",
                            "output_schema": {"type": "object", "properties": {"xs": {"type": "array"}}},
                        },
                        {
                            "name": "each",
                            "dependencies": ["src"],
                            "for_each": "results.src.output.xs",
                            "prompt": "{{ item }}",
                        },
                        {"name": "each__items", "prompt": "q"},
                    ]
                }
            },
        },
    )
    with pytest.raises(
        ValueError, match=r"M.each__items clashes with the task that computes the for_each items of M.each"
    ):
        build_dag(workflow)


def test_ambiguous_plain_names_need_the_qualified_id(tmp_path):
    workflow = workflow_from(
        tmp_path,
        {
            "name": "amb",
            "modules": {
                "A": {"agents": [{"name": "x", "prompt": "p"}]},
                "B": {"agents": [{"name": "x", "prompt": "p"}]},
                "C": {
                    "agents": [
                        {"name": "y", "dependencies": ["A.x", "B.x"], "prompt": "{{ results['A.x'].text }}"}
                    ]
                },
            },
        },
    )
    assert upstream_aliases(workflow, "C", workflow.get_agent("C.y")) == {"A.x": "A.x", "B.x": "B.x"}


def test_output_validation_errors_name_agent_path_and_reason_and_are_transient():
    schema = {
        "type": "object",
        "properties": {"skus": {"type": "array", "items": {"type": "string"}}},
        "required": ["skus"],
    }
    assert validate_output('{"skus": ["A"]}', schema, "Inventory.find") == {"skus": ["A"]}
    with pytest.raises(
        OutputValidationError, match=r"agent Inventory.find: .* at \$.skus\[0\]: 3 is not of type 'string'"
    ):
        validate_output('{"skus": [3]}', schema, "Inventory.find")
    with pytest.raises(OutputValidationError, match=r"at \$: 'skus' is a required property"):
        validate_output("{}", schema, "Inventory.find")
    with pytest.raises(OutputValidationError, match=r"not valid JSON .*'sure, here it is'") as info:
        validate_output("sure, here it is", schema, "Inventory.find")
    assert classify(info.value).transient
    decision = AgentRetryPolicy(base_delay=1, max_delay=1).evaluate(info.value, 1, 2)
    assert "transient" in str(decision.reason)


def test_bad_operator_arguments_fail_at_parse_time():
    with pytest.raises(ValueError, match=r"invalid condition expression 'open\(1\)'"):
        LLMAgentOperator(task_id="a", prompt="p", condition="open(1)")
    with pytest.raises(ValueError, match=r"invalid repeat_until expression"):
        LLMAgentOperator(task_id="b", prompt="p", repeat_until="lastt.text")
    with pytest.raises(ValueError, match="max_iterations"):
        LLMAgentOperator(task_id="c", prompt="p", repeat_until="True", max_iterations=0)
    with pytest.raises(Exception, match="is not valid under any of the given schemas|is not of type"):
        LLMAgentOperator(task_id="d", prompt="p", output_schema={"type": "objekt"})


def test_mapped_results_in_upstream_text_are_labelled_per_item():
    text = flat_upstream_text(
        {"per_sku": "I.per_sku", "I.per_sku": "I.per_sku"},
        {
            "per_sku": [
                {"status": "success", "text": "order 5", "item": "A-1"},
                {"status": "failed", "text": "", "reason": "boom", "item": "B-2"},
            ]
        },
    )
    assert text == '## per_sku[0] (item "A-1")\norder 5\n\n## per_sku[1] (item "B-2")\n(unavailable: boom)'


def test_compile_result_aggregates_mapped_items_and_explains_skips():
    agents = {
        "I.find": {"module": "I", "agent": "find", "critical": True},
        "I.per": {"module": "I", "agent": "per", "critical": False, "mapped": True, "items": ["A", "B", "C"]},
        "I.none": {
            "module": "I",
            "agent": "none",
            "critical": True,
            "mapped": True,
            "items_task": "I.none__items",
        },
        "I.after": {"module": "I", "agent": "after", "critical": True},
    }
    ok = {
        "status": "success",
        "text": "t",
        "output": {"n": 1},
        "provider": "openai",
        "model": "m",
        "usage": {"input_tokens": 10, "output_tokens": 2, "cached_input_tokens": 0},
        "cost_usd": 0.5,
        "rounds": 1,
        "latency_s": 0.25,
    }
    instances = {
        "I.per": [
            {
                "map_index": 2,
                "state": "failed",
                "duration_s": 0.5,
                "result": {"agent_error": "OutputValidationError: x"},
            },
            {"map_index": 0, "state": "success", "duration_s": 1.0, "result": {**ok, "item": "A"}},
            {
                "map_index": 1,
                "state": "skipped",
                "duration_s": 0.1,
                "result": {
                    "status": "skipped",
                    "skip_reason": "condition 'item != 'B'' was false",
                    "item": "B",
                },
            },
        ]
    }
    res = compile_result(
        workflow="w",
        dag_id="w",
        run_id="r",
        agents=agents,
        states={"I.find": "success", "I.none": "skipped", "I.after": "skipped"},
        results={"I.find": ok, "I.none": {"skip_reason": "for_each 'x' gave an empty list"}},
        allow_partial_completion=True,
        cost_budget=None,
        instances=instances,
        durations={"I.find": 2.0},
        upstream={"I.after": ["I.none", "I.none__items"]},
    )
    per = res["agents"]["I.per"]
    assert per["status"] == "failed"
    assert per["mapped"]
    assert per["rounds"] == 1
    assert [(i["map_index"], i["item"], i["status"]) for i in per["items"]] == [
        (0, "A", "success"),
        (1, "B", "skipped"),
        (2, "C", "failed"),
    ]
    assert per["items"][2]["reason"] == "OutputValidationError: x"
    assert per["output"] == [{"n": 1}, None, None]
    assert per["duration_s"] == 1.6
    assert per["cost_usd"] == 0.5
    assert res["agents"]["I.none"]["reason"] == "for_each 'x' gave an empty list"
    assert (
        res["agents"]["I.after"]["reason"]
        == "not run: upstream I.none was skipped (for_each 'x' gave an empty list)"
    )
    assert res["agents"]["I.find"]["duration_s"] == 2.0
    assert res["agents"]["I.find"]["mapped"] is False
    assert res["outcome"] == "partial"  # only the optional mapped agent failed
    assert res["totals"]["usage"]["input_tokens"] == 20


class _TI:
    """Answers xcom_pull from a dict and records pushes (the items task runs without a DAG here)."""

    def __init__(self, xcoms):
        self.xcoms, self.pushed = xcoms, {}

    def xcom_pull(self, task_ids, **_):
        return self.xcoms.get(task_ids)

    def xcom_push(self, key, value):
        self.pushed[key] = value


def _items(expression, xcoms, params=None):
    from airflow_agent_provider.operators.control_flow import ForEachItemsOperator

    op = ForEachItemsOperator(
        task_id="each__items", expression=expression, upstream_tasks={"src": "M.src"}, agent_task_id="M.each"
    )
    ti = _TI(xcoms)
    return op.execute({"ti": ti, "run_id": "r", "params": params or {}}), ti.pushed


def test_items_task_lists_empty_lists_missing_upstreams_and_bad_values():
    src = {"status": "success", "text": "", "output": {"xs": ["a", "b"], "n": 3}}
    assert _items("results.src.output.xs", {"M.src": src}) == (["a", "b"], {})
    assert _items("results.src.output.xs[:params.k]", {"M.src": src}, {"k": 1})[0] == ["a"]
    assert _items("[]", {"M.src": src}) == ([], {"skip_reason": "for_each '[]' gave an empty list"})
    items, pushed = _items("results.src.output.xs", {})  # a failed optional upstream (all_done)
    assert items == []
    assert "upstream ['src'] produced no result" in pushed["skip_reason"]
    with pytest.raises(
        TypeError, match=r"agent M.each: for_each 'results.src.output.n' must give a list, got int"
    ):
        _items("results.src.output.n", {"M.src": src})
    with pytest.raises(ValueError, match=r"agent M.each: for_each 'results.src.output.missing' failed"):
        _items("results.src.output.missing", {"M.src": src})


def test_an_agent_result_written_by_the_triggerer_reads_back_as_a_dict():
    """Airflow 3.3's triggerer stores TaskSuccessEvent XComs as json.dumps: workers see a string."""
    import json

    from airflow_agent_provider.operators.control_flow import decode_agent_xcom

    result = {"status": "success", "text": "ok", "cost_usd": 0.01}
    assert decode_agent_xcom(json.dumps(result)) == result
    assert decode_agent_xcom([json.dumps(result), None]) == [result, None]
    assert decode_agent_xcom(result) == result
    # Anything that is not an agent record stays exactly as it was.
    assert decode_agent_xcom('{"a": 1}') == '{"a": 1}'
    assert decode_agent_xcom("{not json}") == "{not json}"
    assert decode_agent_xcom("plain text") == "plain text"
