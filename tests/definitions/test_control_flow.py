"""condition, for_each, output_schema, repeat_until, params, triggered_by and produces in definitions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airflow_agent_provider.definitions import (
    ParamSpec,
    WorkflowDefinitionError,
    load_workflows,
    parse_workflow,
)
from airflow_agent_provider.definitions.expressions import Expression

GOOD = """\
name: control_flow
params:
  reorder_threshold: {type: integer, default: 2, minimum: 0, maximum: 100, description: SKUs needed}
  region: {type: string, default: EU, enum: [EU, US]}
  month: {type: string}
defaults: {model: gpt-5-mini}
modules:
  Inventory:
    agents:
      - name: find_reorders
        prompt: List SKUs.
        output_schema:
          type: object
          properties: {skus: {type: array, items: {type: string}}}
          required: [skus]
      - name: reorder_sku
        dependencies: [find_reorders]
        condition: len(results.find_reorders.output.skus) >= params.reorder_threshold
        for_each: results['Inventory.find_reorders'].output.skus
        output_schema: airflow_agent_provider.examples.erp_schemas.ReorderProposal
        prompt: "Reorder {{ item }} in {{ params.region }} for {{ params.month }}."
  Compliance:
    agents:
      - name: policy_check
        for_each: [SOD-01, {id: FIN-07, strict: true}]
        prompt: "Check {{ item }}."
      - name: memo
        dependencies: [policy_check, Inventory.find_reorders]
        repeat_until: "last.output.complete or iteration >= 2 or len(results.policy_check.text) > 10"
        max_iterations: 5
        prompt: "Draft {{ iteration }}{% if last %}, improving {{ last.text }}{% endif %}."
"""


def load(text: str = GOOD):
    return parse_workflow(text, source="control_flow.yaml")


def problems_of(text: str) -> str:
    with pytest.raises(WorkflowDefinitionError) as info:
        load(text)
    return str(info.value)


def test_good_control_flow_fields_load_with_compiled_expressions():
    wf = load()
    reorder = wf.get_agent("Inventory.reorder_sku")
    condition = reorder.condition_expression()
    assert isinstance(condition, Expression)
    assert (
        condition.evaluate(
            {
                "results": {"find_reorders": {"output": {"skus": ["A", "B"]}}},
                "params": {"reorder_threshold": 2},
            }
        )
        is True
    )
    for_each = reorder.for_each_expression()
    assert for_each is not None
    assert reorder.static_for_each() is None
    assert for_each.evaluate({"results": {"Inventory.find_reorders": {"output": {"skus": ["A"]}}}}) == ["A"]

    policy = wf.get_agent("Compliance.policy_check")
    assert policy.for_each_expression() is None
    assert policy.static_for_each() == ["SOD-01", {"id": "FIN-07", "strict": True}]
    assert policy.condition_expression() is None
    assert policy.repeat_until_expression() is None

    memo = wf.get_agent("Compliance.memo")
    assert memo.max_iterations == 5
    until = memo.repeat_until_expression()
    assert until is not None
    assert until.names == {"last", "iteration", "results"}
    names = {
        "last": {"output": {"complete": False}},
        "iteration": 2,
        "results": {"policy_check": {"text": "x"}},
    }
    assert until.evaluate(names) is True


def test_new_fields_have_quiet_defaults():
    agent = load().get_agent("Inventory.find_reorders")
    assert (agent.condition, agent.for_each, agent.repeat_until, agent.max_iterations) == (
        None,
        None,
        None,
        3,
    )
    assert load().get_agent("Compliance.policy_check").resolved_output_schema() is None


def test_output_schema_inline_and_pydantic_model_resolve_to_json_schema():
    wf = load()
    inline = wf.get_agent("Inventory.find_reorders").resolved_output_schema()
    assert inline == {
        "type": "object",
        "properties": {"skus": {"type": "array", "items": {"type": "string"}}},
        "required": ["skus"],
    }
    inline["type"] = "changed"  # a copy: the definition is not affected
    assert wf.get_agent("Inventory.find_reorders").resolved_output_schema()["type"] == "object"

    model = wf.get_agent("Inventory.reorder_sku").resolved_output_schema()
    assert model["type"] == "object"
    assert model["additionalProperties"] is False
    assert set(model["required"]) >= {"sku", "order_quantity", "urgency"}


def test_control_flow_fields_cannot_be_set_in_defaults():
    text = GOOD.replace("defaults: {model: gpt-5-mini}", "defaults: {model: gpt-5-mini, condition: 'True'}")
    assert "defaults.condition: unknown field 'condition'" in problems_of(text)


def test_for_each_must_be_a_non_empty_list_or_an_expression():
    text = GOOD.replace("for_each: [SOD-01, {id: FIN-07, strict: true}]", "for_each: []")
    assert "modules.Compliance.agents[0].for_each: for_each must not be an empty list" in problems_of(text)
    text = GOOD.replace("for_each: [SOD-01, {id: FIN-07, strict: true}]", "for_each: 3")
    assert "for_each must be a list or an expression string, got int" in problems_of(text)
    text = GOOD.replace("for_each: [SOD-01, {id: FIN-07, strict: true}]", f"for_each: {list(range(1025))}")
    assert "for_each has 1025 items; at most 1024" in problems_of(text)


def test_expressions_must_read_results_through_a_literal_agent_name():
    text = GOOD.replace(
        "condition: len(results.find_reorders.output.skus) >= params.reorder_threshold",
        "condition: len(results) > 0",
    )
    assert (
        "modules.Inventory.agents[1].condition: condition must read upstream results as results.<agent> or "
        "results['Module.agent']" in problems_of(text)
    )


def test_condition_with_a_constant_failure_is_a_definition_error():
    text = GOOD.replace(
        "condition: len(results.find_reorders.output.skus) >= params.reorder_threshold", "condition: 1/0"
    )
    assert "condition: invalid expression '1/0': this part always fails: cannot compute" in problems_of(text)


# -- params -------------------------------------------------------------------------------------


def test_params_become_json_schema_with_defaults_checked():
    params = load().params
    assert params["reorder_threshold"].json_schema() == {"type": "integer", "minimum": 0, "maximum": 100}
    assert params["reorder_threshold"].default == 2
    assert params["reorder_threshold"].description == "SKUs needed"
    assert params["region"].json_schema() == {"type": "string", "enum": ["EU", "US"]}
    assert params["month"].has_default is False  # a manual workflow may ask for it when triggered


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"type": "integer", "default": True}, "True is not of type 'integer'"),
        ({"type": "integer", "default": 1.5}, "1.5 is not of type 'integer'"),
        ({"type": "number", "default": "3"}, "'3' is not of type 'number'"),
        ({"type": "boolean", "default": "yes"}, "'yes' is not of type 'boolean'"),
        ({"type": "array", "default": "a,b"}, "'a,b' is not of type 'array'"),
        ({"type": "object", "default": [1]}, "[1] is not of type 'object'"),
        ({"type": "integer", "default": 11, "maximum": 10}, "11 is greater than the maximum of 10"),
        ({"type": "integer", "minimum": 5, "maximum": 1}, "minimum (5) is greater than maximum (1)"),
        ({"type": "string", "enum": ["a", 2]}, "enum value 2 does not fit type string"),
        ({"type": "string", "maximum": 3}, "maximum only applies to integer or number params, not string"),
    ],
)
def test_param_spec_rejects_inconsistent_definitions(spec: dict, fragment: str):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        ParamSpec.model_validate(spec)


def test_params_without_default_are_refused_for_scheduled_workflows():
    text = GOOD.replace("name: control_flow", "name: control_flow\nschedule: '@daily'")
    assert "params.month: param 'month' needs a default: the workflow is scheduled" in problems_of(text)


# -- produces and triggered_by ------------------------------------------------------------------


def test_produces_defaults_to_the_workflow_asset_and_can_be_set():
    assert load().produces == "agent-workflow://control_flow"
    assert load(
        GOOD.replace("name: control_flow", "name: control_flow\nproduces: s3://erp/close.json")
    ).produces == ("s3://erp/close.json")
    assert "the 'airflow' URI scheme is reserved" in problems_of(
        GOOD.replace("name: control_flow", "name: control_flow\nproduces: airflow://x")
    )
    assert "produces: must be an asset URI" in problems_of(
        GOOD.replace("name: control_flow", "name: control_flow\nproduces: not a uri")
    )


def _workflow(name: str, triggered_by: list[str] | None = None) -> str:
    trigger = f"triggered_by: {triggered_by}\n" if triggered_by is not None else ""
    return f"name: {name}\n{trigger}modules:\n  M:\n    agents:\n      - {{name: a, model: gpt-5-mini, prompt: Hi}}\n"


def test_triggered_by_chain_in_one_folder_loads(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(_workflow("close"))
    (tmp_path / "b.yaml").write_text(_workflow("audit", ["close"]))
    (tmp_path / "c.yaml").write_text(_workflow("report", ["audit", "close"]))
    workflows, errors = load_workflows(tmp_path)
    assert errors == []
    assert {w.name: w.triggered_by for w in workflows} == {
        "close": [],
        "audit": ["close"],
        "report": ["audit", "close"],
    }


def test_triggered_by_unknown_workflow_is_an_error_for_that_file_only(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(_workflow("close"))
    (tmp_path / "b.yaml").write_text(_workflow("audit", ["clsoe"]))
    workflows, errors = load_workflows(tmp_path)
    assert [w.name for w in workflows] == ["close"]
    assert [Path(e.path).name for e in errors] == ["b.yaml"]
    text = str(errors[0])
    assert "triggered_by[0]: unknown workflow 'clsoe'" in text
    assert "did you mean 'close'?" in text
    assert "(line 2)" in text


def test_trigger_cycle_is_an_error_for_every_workflow_in_it(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(_workflow("close", ["report"]))
    (tmp_path / "b.yaml").write_text(_workflow("audit", ["close"]))
    (tmp_path / "c.yaml").write_text(_workflow("report", ["audit"]))
    (tmp_path / "d.yaml").write_text(_workflow("other"))
    workflows, errors = load_workflows(tmp_path)
    assert [w.name for w in workflows] == ["other"]
    assert sorted(Path(e.path).name for e in errors) == ["a.yaml", "b.yaml", "c.yaml"]
    assert all("trigger cycle: " in str(e) and "runs never stop" in str(e) for e in errors)
    assert "close -> audit -> report -> close" in str(errors[0])
