"""Defaults, durations and the Workflow API the DAG factory relies on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from airflow_agent_provider.definitions import RetrySpec, Workflow, parse_duration, parse_workflow


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (30, timedelta(seconds=30)),
        (1.5, timedelta(seconds=1.5)),
        ("45", timedelta(seconds=45)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (" 1d 2h ", timedelta(days=1, hours=2)),
        ("0.5h", timedelta(minutes=30)),
        (timedelta(seconds=7), timedelta(seconds=7)),
    ],
)
def test_durations(value, expected):
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    "value", ["2 hours", "5x", "m5", "30m1h", "1h1h", "", True, -5, "-5s", None, [1], float("inf")]
)
def test_bad_durations_explain_themselves(value):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


WORKFLOW = """\
name: wf
start_date: 2026-03-01
defaults:
  model: gpt-5-mini
  temperature: 0.3
  max_tokens: 2000
  critical: false
  retries: {attempts: 5, base_delay: 1s, max_delay: 1m}
  timeout: 90
modules:
  HR:
    agents:
      - name: plain
        prompt: P
      - name: own
        prompt: O
        max_tokens: 10
        temperature: null
        critical: true
        retries: {attempts: 0}
        connection: my_conn
  Finance:
    agents:
      - name: claude
        provider: anthropic
        model: claude-haiku-4-5
        prompt: C
        dependencies: [HR.plain, local]
      - name: local
        prompt: L
"""


def test_defaults_are_applied_to_agents_that_do_not_set_a_field():
    wf = parse_workflow(WORKFLOW)
    plain = wf.get_agent("HR.plain")
    assert (plain.provider, plain.model, plain.connection) == ("openai", "gpt-5-mini", "agent_openai_default")
    assert (plain.temperature, plain.max_tokens, plain.critical) == (0.3, 2000, False)
    assert plain.retries == RetrySpec(
        attempts=5, base_delay=timedelta(seconds=1), max_delay=timedelta(minutes=1)
    )
    assert plain.timeout == timedelta(seconds=90)
    assert (plain.max_rounds, plain.deferrable, plain.priority, plain.pool_slots) == (8, False, 1, 1)

    own = wf.get_agent("HR.own")
    assert (own.max_tokens, own.temperature, own.critical, own.connection) == (10, None, True, "my_conn")
    assert own.retries.attempts == 0
    assert own.retries.base_delay == timedelta(seconds=30)

    claude = wf.get_agent("Finance.claude")
    assert (claude.provider, claude.model, claude.connection) == (
        "anthropic",
        "claude-haiku-4-5",
        "agent_anthropic_default",
    )
    assert claude.temperature == 0.3


def test_builtin_defaults_without_a_defaults_section():
    wf = parse_workflow("name: x\nmodules:\n  M:\n    agents:\n      - {name: a, model: m, prompt: p}\n")
    agent = wf.get_agent("M.a")
    assert (agent.provider, agent.connection, agent.critical, agent.deferrable) == (
        "openai",
        "agent_openai_default",
        True,
        False,
    )
    assert (agent.priority, agent.max_rounds, agent.max_tokens, agent.temperature) == (1, 8, 1024, None)
    assert wf.start_date == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert (wf.schedule, wf.catchup, wf.owner, wf.allow_partial_completion) == (None, False, "airflow", False)


def test_workflow_api_for_the_dag_factory():
    wf = parse_workflow(WORKFLOW)
    assert [(m, a.name) for m, a in wf.iter_agents()] == [
        ("HR", "plain"),
        ("HR", "own"),
        ("Finance", "claude"),
        ("Finance", "local"),
    ]
    assert Workflow.agent_id("Finance", "claude") == wf.agent_id("Finance", "claude") == "Finance.claude"
    assert wf.upstream_ids("Finance.claude") == ["HR.plain", "Finance.local"]
    assert wf.upstream_ids("HR.plain") == []
    assert wf.start_date == datetime(2026, 3, 1, tzinfo=timezone.utc)
    with pytest.raises(KeyError, match="Finance.nope"):
        wf.get_agent("Finance.nope")


def test_models_can_be_built_in_code_and_forbid_unknown_fields():
    wf = Workflow.model_validate(
        {
            "name": "code",
            "defaults": {"model": "gpt-5-mini"},
            "modules": {"M": {"agents": [{"name": "a", "prompt": "p"}]}},
        }
    )
    assert wf.get_agent("M.a").model == "gpt-5-mini"
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        Workflow.model_validate({"name": "x", "modules": {}, "colour": "red"})


@pytest.mark.parametrize("schedule", ["@daily", "@once", "0 6 1 * *", "*/15 * * * 1-5"])
def test_valid_schedules(schedule):
    wf = parse_workflow(
        f"name: s\nschedule: '{schedule}'\nmodules:\n  M:\n    agents:\n      - {{name: a, model: m, prompt: p}}\n"
    )
    assert wf.schedule == schedule


@pytest.mark.parametrize("schedule", ["@fortnightly", "0 6 1 *", "61 * * * *", "0 6 1 * * *"])
def test_invalid_schedules(schedule):
    with pytest.raises(Exception, match="schedule"):
        parse_workflow(
            f"name: s\nschedule: '{schedule}'\nmodules:\n  M:\n    agents:\n      - {{name: a, model: m, prompt: p}}\n"
        )


def test_retry_max_delay_must_not_be_below_base_delay():
    with pytest.raises(ValidationError, match="max_delay"):
        RetrySpec(base_delay="10m", max_delay="1m")
