"""delivery / deadline / batch_fallback in workflow files: inheritance and the refusals with their reasons."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_agent_provider.definitions import WorkflowDefinitionError
from tests.control_flow._support import workflow_from


def _wf(tmp_path, **extra):
    data = {
        "name": "batch_defs",
        "modules": {
            "Finance": {
                "agents": [
                    {"name": "a", "prompt": "A"},
                    {"name": "b", "prompt": "B", "delivery": "realtime"},
                ]
            },
            "HR": {"agents": [{"name": "c", "prompt": "C"}]},
        },
    }
    for key, value in extra.items():
        if key.startswith("Finance_"):
            data["modules"]["Finance"][key.removeprefix("Finance_")] = value
        else:
            data[key] = value
    return workflow_from(tmp_path, data)


def test_default_is_realtime_with_a_24h_deadline(tmp_path):
    wf = _wf(tmp_path)
    for _, agent in wf.iter_agents():
        assert agent.delivery == "realtime"
        assert agent.deadline == timedelta(hours=24)
        assert agent.batch_fallback == "batch"


def test_module_over_workflow_over_defaults_and_the_agent_wins(tmp_path):
    wf = _wf(
        tmp_path, delivery="batch", deadline="6h", Finance_deadline="2h", Finance_batch_fallback="realtime"
    )
    assert wf.get_agent("Finance.a").delivery == "batch"
    assert wf.get_agent("Finance.a").deadline == timedelta(hours=2)
    assert wf.get_agent("Finance.a").batch_fallback == "realtime"
    assert wf.get_agent("Finance.b").delivery == "realtime"  # its own value
    assert wf.get_agent("HR.c").delivery == "batch"
    assert wf.get_agent("HR.c").deadline == timedelta(hours=6)
    assert wf.get_agent("HR.c").batch_fallback == "batch"


def test_defaults_block_is_inherited_too(tmp_path):
    wf = _wf(tmp_path, defaults={"delivery": "batch", "deadline": "30m"})
    assert wf.get_agent("HR.c").delivery == "batch"
    assert wf.get_agent("HR.c").deadline == timedelta(minutes=30)


@pytest.mark.parametrize(
    ("deadline", "needle"),
    [("25h", "longer than the providers' 24h batch window"), ("30s", "shorter than 1m")],
)
def test_deadline_bounds(tmp_path, deadline, needle):
    with pytest.raises(WorkflowDefinitionError, match=needle):
        _wf(tmp_path, delivery="batch", deadline=deadline)


def test_top_level_and_defaults_must_agree(tmp_path):
    with pytest.raises(WorkflowDefinitionError, match="both at the top of the workflow and in defaults"):
        _wf(tmp_path, delivery="batch", defaults={"delivery": "realtime"})


def test_batch_with_tools_or_repeat_until_is_refused_with_the_reason(tmp_path):
    data = {
        "name": "batch_tools",
        "tools": {"lookup": "airflow_agent_provider.examples.erp_tools.check_policy"},
        "delivery": "batch",
        "modules": {
            "Finance": {
                "agents": [
                    {"name": "with_tools", "prompt": "A", "tools": ["lookup"]},
                    {"name": "loops", "prompt": "B", "repeat_until": "iteration >= 2"},
                ]
            }
        },
    }
    with pytest.raises(WorkflowDefinitionError) as info:
        workflow_from(tmp_path, data)
    text = str(info.value)
    assert "Finance.with_tools cannot use delivery: batch: it uses tools" in text
    assert "Finance.loops cannot use delivery: batch: it uses repeat_until" in text
    assert "use delivery: realtime" in text
