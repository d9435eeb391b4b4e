"""The concurrency the user set: ``max_active_tasks`` and pools derived from the definitions."""

from __future__ import annotations

from airflow_agent_provider.definitions import parse_workflow
from airflow_agent_provider.factory import build_dag
from airflow_agent_provider.factory.pools import MAX_MAPPED_INSTANCES, max_active_tasks, pools_for


def _fleet(agents: int, *, head: str = "", agent_extra: str = "", modules: int = 4) -> str:
    lines = [
        "name: fleet",
        "schedule: null",
        head,
        "defaults: {provider: openai, model: gpt-5-mini}",
        "modules:",
    ]
    per = agents // modules
    for module in range(modules):
        lines += [f"  M{module}:", "    agents:"]
        for index in range(per):
            lines += [f"      - name: a{index}", f"        prompt: check {index}"]
            if agent_extra:
                lines.append(agent_extra)
    return "\n".join(line for line in lines if line) + "\n"


def test_500_agents_under_a_200_call_limit_get_200_at_once_and_a_pool_that_counts_deferred(tmp_path):
    workflow = parse_workflow(
        _fleet(500, head="rate_limits:\n  openai: {requests_per_minute: 6000, max_concurrent: 200}"),
        tmp_path / "fleet.yaml",
    )
    dag = build_dag(workflow)
    # 200 agents + the workflow_result task; not Airflow's max_active_tasks_per_dag (16).
    assert dag.max_active_tasks == 201
    assert {dag.get_task(t).pool for t in dag.task_ids if t != "workflow_result"} == {"llm_openai"}
    assert pools_for([workflow]) == {
        "llm_openai": {
            "slots": 200,
            "description": "LLM calls to openai (airflow-agent-provider)",
            "include_deferred": True,
        }
    }


def test_max_parallel_agents_wins(tmp_path):
    workflow = parse_workflow(
        _fleet(500, head="max_parallel_agents: 50\nrate_limits:\n  openai: {max_concurrent: 200}"),
        tmp_path / "f.yaml",
    )
    assert build_dag(workflow).max_active_tasks == 50


def test_without_concurrency_limits_the_dag_does_not_cap_the_fleet(tmp_path):
    # Only a request rate: the limiter paces the calls, Airflow's global settings bound the tasks.
    workflow = parse_workflow(
        _fleet(500, head="rate_limits:\n  openai: {requests_per_minute: 6000}"), tmp_path / "f.yaml"
    )
    assert build_dag(workflow).max_active_tasks == 501


def test_a_small_fleet_under_a_large_limit_counts_its_agents(tmp_path):
    workflow = parse_workflow(
        _fleet(8, head="rate_limits:\n  openai: {max_concurrent: 200}"), tmp_path / "f.yaml"
    )
    assert max_active_tasks(workflow) == 8 + 1


def test_limits_per_model_and_per_provider_add_up_and_explicit_pools_are_not_capped(tmp_path):
    text = (
        """name: mixed
schedule: null
rate_limits:
  openai/gpt-5-mini: {max_concurrent: 2}
  anthropic: {max_concurrent: 3}
defaults: {provider: openai, model: gpt-5-mini}
modules:
  M:
    agents:
"""
        + "".join(f"      - {{name: mini{i}, prompt: hi}}\n" for i in range(4))
        + "".join(
            f"      - {{name: claude{i}, prompt: hi, provider: anthropic, model: claude-haiku-4-5}}\n"
            for i in range(2)
        )
        + "".join(f"      - {{name: own{i}, prompt: hi, pool: my_pool}}\n" for i in range(2))
    )
    workflow = parse_workflow(text, tmp_path / "mixed.yaml")
    # 4 gpt-5-mini agents in a 2-slot pool -> 2; 2 Anthropic agents (3 slots) -> 2; 2 agents in a
    # pool of the user's (its size is in the metadata DB) -> 2; + the result task.
    assert max_active_tasks(workflow) == 2 + 2 + 2 + 1
    dag = build_dag(workflow)
    assert dag.max_active_tasks == 7
    assert dag.get_task("M.own0").pool == "my_pool"
    assert dag.get_task("M.claude0").pool == "llm_anthropic"
    assert dag.get_task("M.mini0").pool == "llm_openai_gpt-5-mini"


def test_mapped_agents_count_one_task_per_item(tmp_path):
    text = (
        _fleet(4, modules=1, agent_extra="        for_each: [1, 2, 3]")
        .replace("prompt: check", "prompt: '{{ item }} check")
        .replace("check 0\n", "check 0'\n")
        .replace("check 1\n", "check 1'\n")
        .replace("check 2\n", "check 2'\n")
        .replace("check 3\n", "check 3'\n")
    )
    workflow = parse_workflow(text, tmp_path / "f.yaml")
    assert max_active_tasks(workflow) == 4 * 3 + 1
    limited = parse_workflow(
        text.replace("schedule: null", "schedule: null\nrate_limits:\n  openai: {max_concurrent: 5}"),
        tmp_path / "g.yaml",
    )
    assert max_active_tasks(limited) == 5 + 1


def test_items_computed_at_run_time_are_bounded_by_airflows_map_length(tmp_path):
    text = _fleet(1, modules=1, head="params:\n  rows: {type: array, default: [1, 2]}").replace(
        "        prompt: check 0", "        for_each: params.rows\n        prompt: 'row {{ item }}'"
    )
    workflow = parse_workflow(text, tmp_path / "f.yaml")
    # the agent's instances, its items task and the result task
    assert build_dag(workflow).max_active_tasks == MAX_MAPPED_INSTANCES + 2
