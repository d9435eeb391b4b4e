"""Every file in ``bad/`` must be rejected with a message that tells the author what to fix and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_agent_provider.definitions import WorkflowDefinitionError, load_workflow, load_workflows

BAD = Path(__file__).parent / "bad"

# file -> fragments that must all appear in str(error); field paths included on purpose.
EXPECTED: dict[str, list[str]] = {
    "cycle.yaml": [
        "modules.Finance.agents[0].dependencies",
        "dependency cycle: Finance.a -> Finance.b -> HR.c -> Finance.a",
    ],
    "unknown_dependency_same_module.yaml": [
        "modules.Finance.agents[1].dependencies[0]",
        "unknown dependency 'reconcile_ledgr'",
        "did you mean 'Finance.reconcile_ledger'?",
    ],
    "unknown_dependency_cross_module.yaml": [
        "modules.Finance.agents[0].dependencies[0]: unknown dependency 'HR.payroll'",
        "module HR has no agent 'payroll'",
        "did you mean 'HR.payroll_summary'?",
        "modules.Finance.agents[1].dependencies[0]: unknown dependency 'Audit.review'",
        "there is no module 'Audit'",
    ],
    "duplicate_agent_name.yaml": [
        "modules.Inventory.agents[1].name",
        "duplicate agent name 'stock_valuation' in module Inventory",
        "line 7",
    ],
    "duplicate_yaml_key.yaml": [
        "modules.HR.agents[0].prompt",
        "duplicate key 'prompt' (first defined on line 8)",
        "line 9",
    ],
    "bad_type.yaml": [
        "modules.Finance.agents[1].max_tokens",
        "must be a whole number, got 'lots'",
        "line 10",
    ],
    "unknown_field.yaml": [
        "modules.Finance.agents[2].modle",
        "unknown field 'modle'",
        "did you mean 'model'?",
        "allowed: provider, connection, model",
        "line 12",
    ],
    "unknown_tool.yaml": [
        "modules.Inventory.agents[0].tools[0]",
        "tool 'get_stock_levels' is not in the workflow's tools allow-list",
        "did you mean 'get_stock_level'?",
    ],
    "tool_not_importable.yaml": [
        "tools.missing_module: cannot import 'airflow_agent_provider.examples.no_such_module'",
        "ModuleNotFoundError: No module named 'airflow_agent_provider.examples.no_such_module'",
        "tools.not_a_function: 'airflow_agent_provider.examples.erp_schemas.ReorderProposal' is not a Python function",
        "tools.missing_function: module 'airflow_agent_provider.examples.erp_tools' has no attribute 'no_such_tool'",
        "tools.not_callable: 'airflow_agent_provider.examples.erp_tools.annotations' is not callable",
    ],
    "bad_yaml_syntax.yaml": ["line 8, column 1:", "unexpected end of stream", "quoted scalar on line 6"],
    "bad_yaml_indent.yaml": [
        "line 6, column 8:",
        "did not find expected '-' indicator",
        "block collection on line 5",
    ],
    "empty.yaml": ["(file): the file is empty"],
    "comment_only.yaml": ["(file): the file is empty"],
    "top_level_list.yaml": ["the top level must be a mapping", "got a list"],
    "bad_duration.yaml": [
        "timeout: invalid duration '2 hours'",
        "defaults.retries.max_delay: invalid duration 'soon'",
        "modules.HR.agents[0].timeout: invalid duration '30m1h': use each unit once, largest first",
        "'1h30m'",
    ],
    "bad_provider.yaml": [
        "modules.HR.agents[0].provider",
        "must be one of 'openai' or 'anthropic', got 'gemini'",
    ],
    "bad_names.yaml": [
        "name: may only contain letters, digits, '_', '.' and '-', got 'month end!'",
        "modules.Human Resources: name 'Human Resources' may only contain letters, digits, '_' and '-'",
        "modules.Human Resources.agents[0].name",
        "got 'payroll.summary'",
    ],
    "missing_prompt.yaml": ["modules.Finance.agents[0].prompt: required field is missing"],
    "negative_budget.yaml": [
        "cost_budget: must be greater than 0, got -5",
        "modules.Finance.cost_budget: must be greater than 0, got 0",
    ],
    "bad_rate_limit_key.yaml": [
        "rate_limits.gemini/pro: rate-limit key 'gemini/pro' must be a provider (openai, anthropic)",
        "rate_limits.openai/: rate-limit key 'openai/' has no model",
        "rate_limits.anthropic: set at least one limit",
    ],
    "temperature_out_of_range.yaml": ["modules.Finance.agents[0].temperature", "must be at most 2, got 2.5"],
    "self_dependency.yaml": [
        "modules.Finance.agents[0].dependencies[0]: agent Finance.a depends on itself",
        "modules.Finance.agents[1].dependencies[0]: agent Finance.b depends on itself",
    ],
    "bad_schedule.yaml": ["schedule: unknown schedule preset '@fortnightly'", "@monthly"],
    "bad_retries.yaml": ["defaults.retries.attempts: must be at least 0, got -1"],
    "model_for_other_provider.yaml": [
        "modules.Finance.agents[0].model",
        "defaults.model 'gpt-5-mini' is for provider openai",
    ],
    "prompt_result_not_dependency.yaml": [
        "modules.Finance.agents[1].prompt: prompt uses results.a but 'a' is not one of this agent's dependencies",
        "results['HR.payroll']",
        "modules.Finance.agents[2].prompt: invalid Jinja template",
    ],
    "no_modules.yaml": ["modules: must not be empty"],
    "several_problems.yaml": [
        "5 problems",
        "cost_budget: must be greater than 0",
        "defaults.temprature: unknown field 'temprature' (did you mean 'temperature'?)",
        "modules.Finance.agents[0].max_tokens: must be a whole number, got 'many'",
        "modules.Finance.agents[1].prompt: required field is missing",
        "modules.Finance.agents[1].provider: must be one of 'openai' or 'anthropic', got 'azure'",
    ],
    "condition_syntax_error.yaml": [
        "modules.Inventory.agents[1].condition: invalid expression 'len(results.count.output.skus > 0'",
        "syntax error: '(' was never closed (column 4)",
        "line 10",
    ],
    "condition_import.yaml": [
        "modules.Inventory.agents[1].condition",
        "function '__import__' is not allowed (allowed: len, min, max",
        "modules.Inventory.agents[2].condition",
        "'.__class__' is not allowed: names starting with '_' or 'func_' are private (column 15)",
    ],
    "condition_unknown_name.yaml": [
        "modules.Inventory.agents[1].condition",
        "unknown name 'result' (allowed names: item, params, results); did you mean 'results'? (column 5)",
    ],
    "condition_item_without_for_each.yaml": [
        "modules.Inventory.agents[1].condition",
        "uses item but the agent has no for_each",
    ],
    "unknown_param_reference.yaml": [
        "modules.Inventory.agents[0].prompt: prompt uses params.regoin but the workflow declares no param 'regoin'",
        "did you mean 'region'?",
        "modules.Inventory.agents[1].condition: condition uses params.reorder_treshold",
        "did you mean 'reorder_threshold'?",
    ],
    "for_each_not_dependency.yaml": [
        (
            "modules.Inventory.agents[1].for_each: for_each uses results.find_reorders but 'find_reorders' is not one "
            "of this agent's dependencies (none)"
        ),
        "modules.Inventory.agents[2].for_each: for_each uses results['Finance.budget']",
        "modules.Inventory.agents[3].prompt: prompt uses {{ item }} (the current for_each item) but the agent has no for_each",
    ],
    "output_schema_invalid.yaml": [
        "modules.Inventory.agents[0].output_schema: not a valid JSON Schema at properties/skus/type",
        "modules.Inventory.agents[1].output_schema: the schema's root must have type: object",
        "modules.Inventory.agents[2].output_schema: output_schema as text must be the dotted path of a pydantic model",
    ],
    "output_schema_not_importable.yaml": [
        "modules.Inventory.agents[0].output_schema: cannot import 'airflow_agent_provider.examples.no_such_module'",
        "ModuleNotFoundError",
        "modules.Inventory.agents[2].output_schema: module 'no_such_package_xyz.models' is not allowed for output "
        "schemas: [agent_provider] allowed_tool_modules (AIRFLOW__AGENT_PROVIDER__ALLOWED_TOOL_MODULES) allows "
        "airflow_agent_provider.examples",
        (
            "modules.Inventory.agents[1].output_schema: 'airflow_agent_provider.examples.erp_tools.get_stock_level' is "
            "not a pydantic model"
        ),
    ],
    "max_iterations_out_of_range.yaml": [
        "modules.Compliance.agents[0].max_iterations: must be at least 1, got 0",
        "modules.Compliance.agents[1].max_iterations: must be at most 50, got 51",
        "modules.Compliance.agents[2].repeat_until: invalid expression 'lastt.output.ok': unknown name 'lastt'",
        "did you mean 'last'?",
    ],
    "max_iterations_without_repeat_until.yaml": [
        "modules.Compliance.agents[0].prompt: prompt uses {{ last }} (the previous answer) but the agent has no repeat_until",
        "modules.Compliance.agents[0].max_iterations: max_iterations only applies together with repeat_until",
        "modules.Compliance.agents[1].repeat_until: repeat_until uses item but the agent has no for_each",
    ],
    "param_default_wrong_type.yaml": [
        "params.reorder_threshold: default 'ten' does not fit this param: 'ten' is not of type 'integer' (line 4)",
        "params.region: default 'APAC' does not fit this param: 'APAC' is not one of ['EU', 'US']",
        "params.discount: default 0.5 does not fit this param: 0.5 is less than the minimum of 0.6",
        "params.dry_run: minimum only applies to integer or number params, not boolean",
        "params.bad name: name 'bad name' must be letters, digits and '_'",
        "params.level.type: must be one of 'string', 'integer', 'number', 'boolean', 'array' or 'object', got 'float'",
    ],
    "triggered_by_with_schedule.yaml": [
        "schedule: schedule must be null when triggered_by is set",
        "got schedule '0 8 1 * *' (line 2)",
        "triggered_by[1]: workflow 'compliance_after_close' cannot be triggered by itself",
        "triggered_by[2]: workflow 'erp_month_end' is listed twice",
        "params.month: param 'month' needs a default: the workflow is scheduled",
    ],
    # issue 13: code only from vetted modules, a narrow template context, bounded input
    "tool_denied_module.yaml": [
        *(
            f"tools.{name}: module {module!r} may never provide tools"
            for name, module in [
                ("shell", "os"),
                ("output", "subprocess"),
                ("run_code", "builtins"),
                ("unpickle", "pickle"),
                ("wipe", "shutil"),
                ("internals", "airflow_agent_provider.definitions.loader"),
            ]
        ),
        "[agent_provider] allowed_tool_modules (AIRFLOW__AGENT_PROVIDER__ALLOWED_TOOL_MODULES) cannot allow it",
        "tools.outside: module 'no_such_package_xyz.tools' is not allowed for tools",
        "tools.lookalike: module 'airflow_agent_provider_examples_evil.tools' is not allowed for tools",
        "(nothing was imported)",
    ],
    "prompt_context.yaml": [
        "defaults.system_prompt: system_prompt uses 'var', which a workflow template cannot read",
        "modules.Finance.agents[0].prompt: prompt uses 'conn'",
        "allowed names: dag_id, ds, item, iteration, last, logical_date, params, results, run_id, upstream_text",
        "modules.Finance.agents[1].prompt: prompt uses 'var'",
        "modules.Finance.agents[2].prompt: prompt uses 'ti'",
        "modules.Finance.agents[3].prompt: prompt uses 'dag_run'",
        "modules.Finance.agents[3].prompt: prompt uses 'macros'",
        "modules.Finance.agents[3].prompt: prompt uses 'task_instance'",
        "modules.Finance.agents[4].prompt: prompt reaches the attribute '__class__'",
        "modules.Finance.agents[4].prompt: prompt reaches the attribute '__mro__'",
        "modules.Finance.agents[4].prompt: prompt reaches the attribute 'mro'",
        "modules.Finance.agents[4].prompt: prompt reaches the attribute '__init__'",
        "modules.Finance.agents[5].prompt: prompt uses {% include %}: workflow templates cannot load other templates",
        "modules.Finance.agents[5].prompt: prompt uses the power operator '**'",
        "modules.Finance.agents[6].model: model uses 'conn'",
    ],
    "yaml_billion_laughs.yaml": [
        "1 problem in workflow definition",
        "line 14, column 18: the document expands to more than 100,000 YAML nodes at alias *l4",
    ],
    "yaml_too_deep.yaml": ["1 problem in workflow definition", "nesting deeper than 64 levels"],
    "output_schema_too_large.yaml": [
        "1 problem in workflow definition",
        "modules.HR.agents[0].output_schema: the schema is larger than 100,000 characters as JSON",
    ],
}

# Files that are fine on their own and only wrong next to the other files of their folder.
EXPECTED_IN_FOLDER: dict[str, list[str]] = {
    "triggered_by_unknown.yaml": [
        "triggered_by[0]: unknown workflow 'erp_month_ned': triggered_by names workflows loaded from the same folder",
        "(line 3)",
    ],
}


def test_corpus_and_expectations_match():
    files = {p.name for p in BAD.glob("*.yaml")}
    assert files == set(EXPECTED) | set(EXPECTED_IN_FOLDER)
    assert len(files) >= 15


def test_loading_the_whole_bad_folder_gives_one_error_per_file_and_no_workflow():
    workflows, errors = load_workflows(BAD)
    assert workflows == []
    by_file = {Path(error.path).name: str(error) for error in errors}
    assert set(by_file) == set(EXPECTED) | set(EXPECTED_IN_FOLDER)
    for name, fragments in EXPECTED_IN_FOLDER.items():
        for fragment in fragments:
            assert fragment in by_file[name], f"{fragment!r} missing from:\n{by_file[name]}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_is_rejected_with_a_clear_message(name: str):
    path = BAD / name
    with pytest.raises(WorkflowDefinitionError) as info:
        load_workflow(path)
    error = info.value
    text = str(error)
    assert text.startswith(str(path))
    assert error.path == str(path)
    assert error.problems
    for fragment in EXPECTED[name]:
        assert fragment in text, f"{fragment!r} missing from:\n{text}"


def test_several_problems_are_reported_together_in_line_order():
    with pytest.raises(WorkflowDefinitionError) as info:
        load_workflow(BAD / "several_problems.yaml")
    problems = info.value.problems
    assert len(problems) == 5
    assert [p.line for p in problems] == [2, 5, 11, 12, 13]
    assert problems[1].loc == "defaults.temprature"
