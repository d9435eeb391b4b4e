"""The narrow prompt context of workflow files, and model output that is never rendered as a template."""

from __future__ import annotations

import json

import pytest

from airflow_agent_provider.operators.agent import LLMAgentOperator
from airflow_agent_provider.operators.prompt_context import WORKFLOW_NAMES, PromptContextError
from tests.operators.agent_support import MemoryStateStore, make_context, run_operator


class SecretsTI:
    """A task instance whose context offers connections and variables, as a real task's does."""

    def __init__(self, xcoms=None) -> None:
        self.xcoms, self.try_number = xcoms or {}, 1
        self.dag_id, self.task_id, self.map_index = "ctx_tests", "agent", -1

    def xcom_pull(self, task_ids, **_):
        return self.xcoms.get(task_ids)


def _full_context(xcoms=None) -> dict:
    """Airflow's context holds secrets accessors: what a workflow prompt must not reach."""
    context = make_context(store=MemoryStateStore())
    context["ti"] = SecretsTI(xcoms)
    context["conn"] = {"warehouse": {"password": "S3CRET-PASSWORD"}}
    context["var"] = {"value": {"api_token": "S3CRET-VARIABLE"}}
    context["macros"] = object()
    context["ds"], context["dag_id"] = "2026-01-01", "ctx_tests"
    return context


@pytest.mark.parametrize(
    "template",
    [
        "{{ conn.warehouse.password }}",
        "{{ var.value.api_token }}",
        "{{ ti.xcom_pull('x') }}",
        "{{ macros.ds_add(ds, 1) }}",
    ],
)
def test_a_workflow_prompt_cannot_reach_secrets(llm_connections, template):
    op = LLMAgentOperator(
        task_id="t", prompt=f"leak {template} [[reply: x]]", prompt_context="workflow", execution="worker"
    )
    context = _full_context()
    with pytest.raises(PromptContextError) as err:
        op.render_template_fields(context)
    message = str(err.value)
    assert "is undefined" in message
    assert "conn, var, ti, macros" in message
    assert all(name in message for name in WORKFLOW_NAMES)
    assert "S3CRET" not in message
    assert llm_connections.stats()["requests"] == 0


def test_a_workflow_prompt_reads_its_names(llm_connections):
    op = LLMAgentOperator(
        task_id="t",
        execution="worker",
        prompt_context="workflow",
        upstream_tasks={"up": "up"},
        prompt="{{ results.up.text }}|{{ params.region }}|{{ ds }}|{{ dag_id }}|{{ run_id }}|{{ iteration }} "
        "[[reply: fine]]",
        system_prompt="System for {{ params.region }}",
    )
    context = _full_context({"up": {"status": "success", "text": "UP"}})
    context["params"] = {"region": "EU"}
    result = run_operator(op, context)
    sent = llm_connections.stats()["log"][0]["user_excerpt"]
    assert f"UP|EU|2026-01-01|ctx_tests|{context['run_id']}|1" in sent
    assert op.system_prompt == "System for EU"
    assert result["text"] == "fine"


def test_python_users_keep_airflows_context(llm_connections):
    op = LLMAgentOperator(
        task_id="t", execution="worker", prompt="{{ conn.warehouse.password[:2] }} [[reply: ok]]"
    )
    op.render_template_fields(_full_context())
    assert op.prompt.startswith("S3")  # prompt_context="airflow" (the default): Airflow's full context


def test_model_output_is_never_rendered(llm_connections):
    upstream = run_operator(  # the model answers with a template (the prompt's literal string asks it to)
        LLMAgentOperator(task_id="up", execution="worker", prompt="[[reply: {{ '{{ 7*7 }}' }}]]"),
        make_context(),
    )
    assert upstream["text"] == "{{ 7*7 }}"
    for index, prompt_context in enumerate(("workflow", "airflow"), start=1):
        down = LLMAgentOperator(
            task_id="down",
            execution="worker",
            prompt_context=prompt_context,
            upstream_tasks={"up": "up"},
            prompt="Got: {{ results.up.text }} [[reply: ok]]",
        )
        run_operator(down, make_context({"up": upstream}))
        sent = llm_connections.stats()["log"][index]["user_excerpt"]
        assert "Got: {{ 7*7 }}" in sent
        assert "49" not in sent


def test_a_repeat_until_iteration_does_not_render_the_last_answer(llm_connections):
    op = LLMAgentOperator(
        task_id="loop",
        execution="worker",
        prompt_context="workflow",
        max_iterations=2,
        prompt="Previous: {{ last.text if last else 'none' }} [[reply: {{ '{{ 6*7 }}' }}]]",
        repeat_until="iteration >= 2",
    )
    result = run_operator(op, make_context())
    second = llm_connections.stats()["log"][1]["user_excerpt"]
    assert "Previous: {{ 6*7 }}" in second
    assert "42" not in second
    assert result["iterations"] == 2
    assert json.dumps(result)


def test_the_rendered_names_are_the_names_the_definitions_validate():
    from airflow_agent_provider.definitions import PROMPT_NAMES
    from airflow_agent_provider.operators.prompt_context import WORKFLOW_NAMES

    assert set(WORKFLOW_NAMES) == PROMPT_NAMES


@pytest.mark.parametrize(
    "template", ["{{ results.up.text * 90000 }}", "{{ 90000 * [results.up.text] * 20 }}"]
)
def test_a_repeat_sized_by_a_runtime_value_is_refused_before_it_is_built(llm_connections, template):
    """Validation cannot know an upstream answer's length; the render sandbox checks the product."""
    op = LLMAgentOperator(
        task_id="t",
        execution="worker",
        prompt_context="workflow",
        upstream_tasks={"up": "up"},
        prompt=f"{template} [[reply: x]]",
    )
    context = _full_context({"up": {"status": "success", "text": "A" * 100}})
    with pytest.raises(PromptContextError) as err:
        run_operator(op, context)
    assert "would build more than 1,000,000" in str(err.value)
    assert "the prompt sandbox refused it" in str(err.value)
    assert llm_connections.stats()["requests"] == 0


def test_small_repeats_and_arithmetic_still_render(llm_connections):
    op = LLMAgentOperator(
        task_id="t",
        execution="worker",
        prompt_context="workflow",
        upstream_tasks={"up": "up"},
        prompt="{{ '-' * 3 }}{{ results.up.text * 2 }}{{ 6 * 7 }} [[reply: ok]]",
    )
    run_operator(op, _full_context({"up": {"status": "success", "text": "ab"}}))
    assert llm_connections.stats()["log"][0]["user_excerpt"].startswith("---abab42")
