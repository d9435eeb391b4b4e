"""The shipped example workflows load and show off what the provider can do."""

from __future__ import annotations

from pathlib import Path

from airflow_agent_provider.definitions import load_workflow, load_workflows

EXAMPLES = Path(__file__).parents[2] / "dags" / "workflows"


def test_examples_folder_loads_without_errors():
    workflows, errors = load_workflows(EXAMPLES)
    assert errors == []
    assert {"erp_month_end", "quickstart", "inventory_compliance"} <= {w.name for w in workflows}


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
