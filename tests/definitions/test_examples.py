"""The shipped example workflows load and show off what the provider can do."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel

from airflow_agent_provider.cli.demo import demo_workflows
from airflow_agent_provider.definitions import Workflow, load_workflow, load_workflows

EXAMPLES = Path(__file__).parents[2] / "dags" / "workflows"


def test_examples_folder_loads_without_errors():
    workflows, errors = load_workflows(EXAMPLES)
    assert errors == []
    assert {"erp_month_end", "quickstart", "inventory_compliance", "month_end_reconciliation"} <= {
        w.name for w in workflows
    }


def test_erp_month_end_shape():
    wf = load_workflow(EXAMPLES / "erp_month_end.yaml")
    agents = list(wf.iter_agents())

    assert list(wf.modules) == ["HR", "Finance", "Inventory", "Compliance"]
    assert len(agents) >= 11
    assert {a.provider for _, a in agents} == {"openai", "anthropic"}
    assert wf.allow_partial_completion is True
    assert wf.cost_budget
    assert wf.max_parallel_agents
    assert wf.schedule == "0 6 1 * *"
    assert {"openai", "anthropic"} <= {key.partition("/")[0] for key in wf.rate_limits}

    tool_users = [wf.agent_id(m, a.name) for m, a in agents if a.tools]
    assert tool_users
    assert all(set(a.tools) <= set(wf.tools) for _, a in agents)

    non_critical = [wf.agent_id(m, a.name) for m, a in agents if not a.critical]
    assert non_critical
    dependants = [
        wf.agent_id(m, a.name)
        for m, a in agents
        if set(non_critical) & set(wf.upstream_ids(wf.agent_id(m, a.name)))
    ]
    assert dependants

    cross_module = [
        (qid, up)
        for m, a in agents
        for qid in [wf.agent_id(m, a.name)]
        for up in wf.upstream_ids(qid)
        if up.partition(".")[0] != m
    ]
    assert ("Finance.payroll_journal", "HR.payroll_summary") in cross_module
    assert {up.partition(".")[0] for qid, up in cross_module if qid.startswith("Compliance.")} >= {
        "Finance",
        "Inventory",
        "HR",
    }

    models = {(a.provider, a.model) for _, a in agents}
    assert models <= {
        ("openai", "gpt-5-mini"),
        ("anthropic", "claude-sonnet-4-6"),
        ("anthropic", "claude-haiku-4-5"),
    }
    assert all("[[" not in a.prompt for _, a in agents)  # no test-server markers in real prompts


def test_quickstart_is_a_small_manual_fan_in():
    wf = load_workflow(EXAMPLES / "quickstart.yaml")
    agents = list(wf.iter_agents())
    assert wf.schedule is None
    assert len(wf.modules) == 1
    assert len(agents) == 3
    assert wf.upstream_ids("Finance.payment_note") == ["Finance.payment_terms", "Finance.cash_position"]


def test_inventory_compliance_uses_every_control_flow_field():
    wf = load_workflow(EXAMPLES / "inventory_compliance.yaml")
    agents = {wf.agent_id(m, a.name): a for m, a in wf.iter_agents()}

    assert wf.triggered_by == ["erp_month_end"]
    assert wf.schedule is None
    assert wf.produces == "agent-workflow://inventory_compliance"
    assert wf.allow_partial_completion is True
    assert all(param.has_default for param in wf.params.values())  # nobody fills them in on a triggered run

    find, reorder = agents["Inventory.find_reorders"], agents["Inventory.reorder_sku"]
    assert "skus" in find.resolved_output_schema()["properties"]
    assert reorder.for_each == "results.find_reorders.output.skus"
    assert reorder.condition_expression().keys["params"] == {"reorder_threshold"}
    assert reorder.resolved_output_schema()["title"] == "ReorderProposal"
    assert agents["Compliance.policy_check"].static_for_each() == ["SOD-01", "FIN-07", "INV-03"]
    memo = agents["Compliance.sign_off_memo"]
    assert memo.repeat_until_expression().names == {"last"}
    assert memo.max_iterations == 3

    # The condition and the fan-out work on the answer find_reorders would give.
    results = {"find_reorders": {"output": {"skus": ["SKU-1002", "SKU-1003"], "notes": "..."}}}
    params = {name: spec.default for name, spec in wf.params.items()}
    assert reorder.condition_expression().evaluate({"results": results, "params": params}) is True
    assert reorder.for_each_expression().evaluate({"results": results, "params": params}) == [
        "SKU-1002",
        "SKU-1003",
    ]

    models = {(a.provider, a.model) for a in agents.values()}
    assert models <= {
        ("openai", "gpt-5-mini"),
        ("anthropic", "claude-sonnet-4-6"),
        ("anthropic", "claude-haiku-4-5"),
    }
    assert all("[[" not in a.prompt for a in agents.values())


def test_month_end_reconciliation_batches_the_reconciliations_and_summarises_in_real_time():
    wf = load_workflow(EXAMPLES / "month_end_reconciliation.yaml")
    agents = {wf.agent_id(m, a.name): a for m, a in wf.iter_agents()}
    batch = {qid for qid, a in agents.items() if a.delivery == "batch"}
    assert batch == {qid for qid in agents if qid.startswith("Reconciliation.")}
    assert len(batch) >= 4
    # Two provider/model groups: one OpenAI batch and one Anthropic message batch.
    assert {(agents[q].provider, agents[q].model) for q in batch} == {
        ("openai", "gpt-5-mini"),
        ("anthropic", "claude-haiku-4-5"),
    }
    summary = agents["Report.controller_summary"]
    assert summary.delivery == "realtime"
    assert set(wf.upstream_ids("Report.controller_summary")) == batch
    # The most specific deadline wins: agent, then module, then workflow.
    assert agents["Reconciliation.accruals_review"].deadline.total_seconds() == 6 * 3600
    assert agents["Reconciliation.bank_reconciliation"].deadline.total_seconds() == 8 * 3600
    assert agents["Reconciliation.vat_return_check"].batch_fallback == "batch"
    assert agents["Reconciliation.bank_reconciliation"].batch_fallback == "realtime"
    assert all(not a.tools and a.repeat_until is None for q, a in agents.items() if q in batch)


# --- Every YAML feature is shown by an example that `airflow-agents demo` runs ---------------------

#: Features no example shows, each with the reason it cannot run green in the demo. A new field
#: fails the test below until an example uses it, or it is listed here with its reason.
NOT_IN_THE_DEMO: dict[str, str] = {}

#: The models every example uses: current ones that genai-prices prices and the SDKs do not flag
#: as deprecated.
CURRENT_MODELS = {
    ("openai", "gpt-5-mini"),
    ("anthropic", "claude-sonnet-4-6"),
    ("anthropic", "claude-haiku-4-5"),
}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation refers to, through Optional, list, dict and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _feature(model: type[BaseModel], field: str) -> str:
    """``Owner.field``, the owner being the model that declares it (AgentSpec inherits AgentDefaults)."""
    owner = next(k for k in reversed(model.__mro__) if field in getattr(k, "model_fields", {}))
    return f"{owner.__name__}.{field}"


def _reference_features(root: type[BaseModel]) -> set[str]:
    """Every field of every model reachable from ``root``: the keys the YAML reference documents."""
    features: set[str] = set()
    todo, seen = [root], set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            features.add(_feature(model, name))
            todo.extend(_models_in(info.annotation))
    return features


def _used_features(model: type[BaseModel], data: Any, found: set[str]) -> None:
    """Record the fields of ``model`` that ``data`` (a parsed YAML mapping) sets, recursively."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        info = model.model_fields.get(key)
        if info is None:
            continue
        found.add(_feature(model, key))
        _walk_value(info.annotation, value, found)


def _walk_value(annotation: Any, value: Any, found: set[str]) -> None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        _used_features(annotation, value, found)
        return
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and isinstance(value, list):
        for item in value:
            _walk_value(args[0], item, found)
    elif origin is dict and isinstance(value, dict):
        for item in value.values():
            _walk_value(args[1], item, found)
    else:  # Optional / Union / Annotated: try every member
        for arg in args:
            _walk_value(arg, value, found)


def _demo_examples() -> dict[str, dict[str, Any]]:
    """Raw YAML of every example workflow the demo runs, by workflow name."""
    workflows, errors = demo_workflows(EXAMPLES.parent)
    assert errors == []
    names = {wf.name for wf in workflows}
    raw = {path.name: yaml.safe_load(path.read_text()) for path in sorted(EXAMPLES.glob("*.y*ml"))}
    assert {data["name"] for data in raw.values()} == names, "the demo runs every example"
    return {data["name"]: data for data in raw.values()}


def test_the_reference_walk_finds_the_fields_of_nested_models():
    features = _reference_features(Workflow)
    assert {"Workflow.modules", "ModuleSpec.budget_gate", "AgentSpec.prompt"} <= features
    assert "AgentDefaults.fallbacks" in features  # inherited fields count once, under their owner
    assert "AgentSpec.fallbacks" not in features
    assert {
        "FallbackSpec.model",
        "BudgetGateSpec.wait",
        "ParamSpec.enum",
        "PriceOverride.input_per_mtok",
    } <= (features)
    found: set[str] = set()
    _used_features(Workflow, {"defaults": {"fallbacks": [{"model": "m"}]}, "modules": {"M": {}}}, found)
    assert found == {"Workflow.defaults", "AgentDefaults.fallbacks", "FallbackSpec.model", "Workflow.modules"}


def test_every_yaml_feature_appears_in_an_example_the_demo_runs():
    features = _reference_features(Workflow)
    assert set(NOT_IN_THE_DEMO) <= features, "an exclusion names a field that no longer exists"
    used: dict[str, set[str]] = {}
    for name, data in _demo_examples().items():
        found: set[str] = set()
        _used_features(Workflow, data, found)
        for feature in found:
            used.setdefault(feature, set()).add(name)
    missing = sorted(features - set(used) - set(NOT_IN_THE_DEMO))
    assert missing == [], f"no example workflow under dags/workflows/ shows {missing}"
    shown_anyway = sorted(set(NOT_IN_THE_DEMO) & set(used))
    assert shown_anyway == [], f"excluded but shown by an example (drop the exclusion): {shown_anyway}"


def test_the_erp_example_shows_a_fallback_model_and_a_budget_gate():
    wf = load_workflow(EXAMPLES / "erp_month_end.yaml")
    assert wf.budget_gate is not None
    agents = [agent for _, agent in wf.iter_agents()]
    assert all(agent.fallbacks for agent in agents)
    for agent in agents:  # a fallback is another model, never the agent's own
        assert all((f.provider, f.model) != (agent.provider, agent.model) for f in agent.fallbacks)
        assert {(f.provider, f.model) for f in agent.fallbacks} <= CURRENT_MODELS


def test_every_example_uses_current_models_and_no_test_server_markers():
    workflows, _ = demo_workflows(EXAMPLES.parent)
    for wf in workflows:
        agents = [agent for _, agent in wf.iter_agents()]
        assert {(a.provider, a.model) for a in agents} <= CURRENT_MODELS, wf.name
        assert all("[[" not in a.prompt for a in agents), wf.name
