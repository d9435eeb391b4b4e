"""The ``execution:`` field: values, inheritance from ``defaults:``, and how it combines with ``deferrable``."""

from __future__ import annotations

import pytest

from airflow_agent_provider.definitions import WorkflowDefinitionError, parse_workflow
from airflow_agent_provider.definitions.models import EXECUTION_MODES, effective_execution


def _workflow(defaults: str = "", agent: str = "", tools: str = "") -> str:
    return f"""\
name: wf
{tools}
defaults:
  model: gpt-5-mini
{defaults}
modules:
  HR:
    agents:
      - name: a
        prompt: P
{agent}
      - name: b
        prompt: Q
"""


def _agents(text: str):
    workflow = parse_workflow(text)
    return {agent.name: agent for _, agent in workflow.iter_agents()}


def test_default_is_auto():
    agents = _agents(_workflow())
    assert agents["a"].execution == "auto"
    assert agents["a"].requested_execution == "auto"


@pytest.mark.parametrize("mode", EXECUTION_MODES)
def test_every_mode_is_accepted_on_the_agent(mode):
    agents = _agents(_workflow(agent=f"        execution: {mode}"))
    assert agents["a"].execution == mode
    assert agents["b"].execution == "auto"


def test_inherited_from_defaults_and_overridden_by_the_agent():
    agents = _agents(_workflow(defaults="  execution: triggerer", agent="        execution: worker"))
    assert agents["a"].execution == "worker"
    assert agents["b"].execution == "triggerer"


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(WorkflowDefinitionError) as info:
        parse_workflow(_workflow(agent="        execution: lambda"))
    text = str(info.value)
    assert "modules.HR.agents[0].execution" in text
    assert "'auto', 'worker', 'deferred' or 'triggerer'" in text
    assert "'lambda'" in text


def test_deferrable_true_with_auto_means_deferred():
    agents = _agents(_workflow(defaults="  deferrable: true"))
    assert agents["a"].execution == "auto"
    assert agents["a"].deferrable is True
    assert agents["a"].requested_execution == "deferred"


def test_explicit_mode_wins_over_inherited_deferrable():
    agents = _agents(_workflow(defaults="  deferrable: true", agent="        execution: worker"))
    assert agents["a"].requested_execution == "worker"
    assert agents["b"].requested_execution == "deferred"


def test_worker_and_deferrable_written_together_contradict():
    with pytest.raises(WorkflowDefinitionError, match="execution: worker contradicts deferrable: true"):
        parse_workflow(_workflow(agent="        execution: worker\n        deferrable: true"))


def test_triggerer_only_agent_cannot_have_tools():
    tools = "tools:\n  get_stock_level: airflow_agent_provider.examples.erp_tools.get_stock_level"
    agent = "        execution: triggerer\n        tools: [get_stock_level]"
    with pytest.raises(WorkflowDefinitionError) as info:
        parse_workflow(_workflow(agent=agent, tools=tools))
    assert "execution: triggerer cannot run tools" in str(info.value)
    assert "modules.HR.agents[0].execution" in str(info.value)


@pytest.mark.parametrize(
    ("execution", "deferrable", "expected"),
    [
        ("auto", False, "auto"),
        ("auto", True, "deferred"),
        ("worker", False, "worker"),
        ("deferred", False, "deferred"),
        ("triggerer", True, "triggerer"),
    ],
)
def test_effective_execution(execution, deferrable, expected):
    assert effective_execution(execution, deferrable) == expected
