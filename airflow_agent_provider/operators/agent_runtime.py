"""
What ``LLMAgentOperator`` does at run time besides driving the loop.

Upstream results for prompts and expressions, narrow rendering, conditions and skip records, the
``task_state_store`` side of the loop, reservation ids, and scrubbing what leaves the task. Kept out
of the operator module so that the operator reads as the three execution paths it chooses between,
and so that nothing here is imported when a DAG file is parsed beyond what the operator needs.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_agent_provider.agent_loop import AgentLoop, LoopSpec
from airflow_agent_provider.llm.prompt import is_available
from airflow_agent_provider.operators.prompt_context import json_safe_names, render_workflow, workflow_names
from airflow_agent_provider.security.redact import scrub, scrub_value

if TYPE_CHECKING:
    from airflow_agent_provider.cost.pricing import PriceOverride
    from airflow_agent_provider.guard.config import GuardConfig
    from airflow_agent_provider.guard.pipeline import GuardedResult
    from airflow_agent_provider.llm.types import LLMResponse, ToolSpec

#: Longest ``agent_error`` / ``skip_reason`` text kept in XCom.
MAX_REASON_CHARS = 2000


def check_arguments(
    *,
    max_rounds: int,
    tools: Any,
    max_iterations: int,
    prompt_context: str,
    condition: str | None,
    repeat_until: str | None,
    output_schema: Any = None,
) -> None:
    """
    The operator's argument checks, so that a bad argument is a DAG import error, not a failure
    after paid calls. Cheap and cached per distinct value (a DAG file builds 500 agents per parse,
    and they share their schemas and expressions). The guard's own arguments are checked where
    they are parsed, in :meth:`GuardConfig.from_arguments`.
    """
    from airflow_agent_provider.agent_loop.config import PROMPT_CONTEXTS, check_output_schema

    if max_rounds < 1:
        raise ValueError("max_rounds must be at least 1")
    if tools is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in tools.items()):
        raise TypeError("tools must map tool names to dotted paths (strings); nothing else is callable")
    if not 1 <= max_iterations <= 50:
        raise ValueError("max_iterations must be between 1 and 50")
    if prompt_context not in PROMPT_CONTEXTS:
        raise ValueError(f"prompt_context must be one of {PROMPT_CONTEXTS}, got {prompt_context!r}")
    check_output_schema(output_schema)  # once per distinct schema (jsonschema is imported only here)
    compile_cached(condition, "condition")
    compile_cached(repeat_until, "repeat_until")


def guard_of(
    module: str,
    agent: str,
    guard: GuardConfig | None,
    arguments: Mapping[str, Any],
    *,
    circuit_breaker: Any,
    rate_limit_timeout: float | None,
) -> GuardConfig:
    """
    The operator's guard, with the ledger identity (``module``, ``agent``) filled in.

    ``guard`` is what the factory builds from the definition; a hand-written DAG gives the same
    settings as mappings (``arguments``), parsed here once. Both at once would leave one ignored.
    """
    from airflow_agent_provider.guard.config import GuardConfig

    if guard is None:
        return GuardConfig.from_arguments(
            module=module,
            agent=agent,
            circuit_breaker=circuit_breaker,
            rate_limit_timeout=rate_limit_timeout,
            **arguments,
        )
    given = sorted(name for name, value in arguments.items() if value is not None)
    if circuit_breaker is not True:
        given.append("circuit_breaker")
    if rate_limit_timeout != DEFAULT_RATE_LIMIT_TIMEOUT:
        given.append("rate_limit_timeout")
    if given:
        raise ValueError(f"pass either guard= or the guard arguments {given}, not both")
    if (guard.module, guard.agent) == (module, agent):
        return guard
    return dataclasses.replace(guard, module=module, agent=agent)


#: The operator's default ``rate_limit_timeout`` (seconds), the same as ``GuardConfig``'s.
DEFAULT_RATE_LIMIT_TIMEOUT = 600.0


@functools.lru_cache(maxsize=2048)
def compile_cached(text: str | None, field: str) -> Any:
    """Compile an expression argument once per distinct text (a bad one is a DAG import error)."""
    if text is None:
        return None
    from airflow_agent_provider.definitions.models import CONDITION_NAMES, REPEAT_UNTIL_NAMES
    from airflow_agent_provider.operators.control_flow import compile_checked

    return compile_checked(text, CONDITION_NAMES if field == "condition" else REPEAT_UNTIL_NAMES, field)


# -- upstream results and names -------------------------------------------------------------------


def expose_results(op: Any, context: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """
    Put ``results``, ``upstream_text``, ``item``, ``iteration`` and ``last`` into the context.

    A mapped (``for_each``) upstream is a list of result dicts in item order. Returns the results
    by alias and task id, and by task id alone (for ``critical_upstreams``).
    """
    from airflow_agent_provider.operators.control_flow import flat_upstream_text, upstream_results

    task_ids = dict.fromkeys([*op.upstream_tasks.values(), *op.critical_upstreams])
    by_task_id = upstream_results(op, context, {t: t for t in task_ids})
    results = {alias: by_task_id[task_id] for alias, task_id in op.upstream_tasks.items()}
    for task_id in op.upstream_tasks.values():
        results[task_id] = by_task_id[task_id]
    context["results"] = results
    context["upstream_text"] = flat_upstream_text(op.upstream_tasks, results)
    context["item"] = op.item
    context.setdefault("iteration", 1)
    context.setdefault("last", None)
    return results, by_task_id


def expression_names(results: Mapping[str, Any], context: Mapping[str, Any], item: Any) -> dict[str, Any]:
    from airflow_agent_provider.operators.control_flow import plain_params

    return {"results": dict(results), "params": plain_params(context.get("params")), "item": item}


def carried_names(names: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """The expression names plus the narrow render context, JSON-safe, for a trigger to carry."""
    return json_safe_names({**workflow_names(context), **names})


def render_fields_narrowly(op: Any, template_fields: Any, context: Mapping[str, Any]) -> None:
    """Render the operator's templated fields with the workflow context only (see ``prompt_context``)."""
    names = workflow_names(context)
    for field in template_fields:
        setattr(op, field, render_workflow(getattr(op, field), names, field=field))


def render_narrow(template: str, context: Mapping[str, Any], field: str) -> str:
    rendered: str = render_workflow(
        template, workflow_names(context), field=field
    )  # a str template renders to str
    return rendered


def missing_critical(critical: list[str], by_task_id: Mapping[str, Any]) -> list[str]:
    def available(entry: Any) -> bool:
        if isinstance(entry, list):  # a mapped upstream: every item must have a result
            return bool(entry) and all(is_available(e) for e in entry)
        return is_available(entry)

    return [task_id for task_id in critical if not available(by_task_id.get(task_id))]


def condition_skip_reason(condition: str | None, names: Mapping[str, Any], task_id: str) -> str | None:
    """Why the agent is skipped by its ``condition`` (None: it runs)."""
    expression = compile_cached(condition, "condition")
    if expression is None:
        return None
    from airflow_agent_provider.definitions.expressions import ExpressionError
    from airflow_agent_provider.operators.control_flow import unavailable_sources

    missing = unavailable_sources(expression, names["results"])
    if missing:
        return f"condition {condition!r} not evaluated: upstream {missing} produced no result"
    try:
        value = expression.evaluate(dict(names))
    except ExpressionError as exc:
        # The data does not have the shape the condition expects: retrying would not change it.
        raise AirflowFailException(f"agent {task_id}: condition {condition!r} failed: {exc}") from None
    return None if value else f"condition {condition!r} was false"


def item_fields(context: Mapping[str, Any], item: Any) -> dict[str, Any]:
    map_index = getattr(context["ti"], "map_index", -1)
    if map_index is None or map_index < 0:
        return {}
    return {"item": item, "map_index": map_index}


def skip_record_for(
    reason: str, task_id: str, agent_meta: Mapping[str, Any], extra: Mapping[str, Any]
) -> dict[str, Any]:
    from airflow_agent_provider.operators.control_flow import skip_record

    return skip_record(reason, task_id=task_id, agent=dict(agent_meta), **extra)


#: How long Airflow lets a whole-loop deferral wait for a triggerer beyond the agent's remaining
#: ``execution_timeout``: the trigger counts that time itself from when it starts, so waiting in
#: the triggerer queue does not use it up, and this backstop still fails a task whose trigger
#: never starts (no triggerer running).
TRIGGER_QUEUE_ALLOWANCE_S = 1800.0


def remaining_s(context: Mapping[str, Any], execution_timeout: timedelta | None) -> float | None:
    """Seconds of ``execution_timeout`` left (the task's start plus it, minus now), or None."""
    if execution_timeout is None:
        return None
    import time

    start = getattr(context["ti"], "start_date", None)
    begun = start.timestamp() if start is not None else time.time()
    return max(0.0, begun + execution_timeout.total_seconds() - time.time())


def deferral_timeout(remaining: float | None) -> timedelta | None:
    """Airflow's own timeout of a whole-loop deferral (see :data:`TRIGGER_QUEUE_ALLOWANCE_S`)."""
    return None if remaining is None else timedelta(seconds=remaining + TRIGGER_QUEUE_ALLOWANCE_S)


def step_prefix(context: Mapping[str, Any]) -> str:
    """Reservation ids of this task try: ``dag/run/task/map_index/tryN`` (``/callK`` per call)."""
    ti = context["ti"]
    return f"{ti.dag_id}/{context['run_id']}/{ti.task_id}/{ti.map_index}/try{ti.try_number}"


def default_retry_policy(op: Any) -> Any:
    """
    ``AgentRetryPolicy`` from the task's own (resolved) retry settings, for an agent given none:
    permanent model errors (401, 400, budget) fail at once, transient ones wait for retry-after.
    """
    from airflow_agent_provider.operators.retry_policy import AgentRetryPolicy

    base = op.retry_delay.total_seconds()
    return AgentRetryPolicy(
        base_delay=base,
        max_delay=op.max_retry_delay.total_seconds() if op.max_retry_delay else max(base, 3600.0),
        exponential=bool(op.retry_exponential_backoff),
    )


# -- durable state --------------------------------------------------------------------------------


def load_loop(op: Any, context: Mapping[str, Any], *, after_deferral: bool = False) -> AgentLoop:
    """
    The loop persisted in ``task_state_store`` when its fingerprint (provider, model, prompt,
    system prompt, tools, schema) still matches the agent, else a fresh one: a retry resumes after
    the last completed call instead of paying for it again.
    """
    from airflow_agent_provider.agent_loop import fingerprint

    provider, model = op.hook.provider, op.model or op.hook.default_model
    print_ = fingerprint(provider, model, op.prompt, op.system_prompt, op.tools, op.output_schema)
    stored = read_state(context, op.state_key, op.log, after_deferral=after_deferral)
    loop, why = AgentLoop.resume(stored, fingerprint=print_)
    if loop is not None:
        if not after_deferral:
            op.log.info(
                "Resuming agent loop after %d completed model call(s); they are not paid again", loop.rounds
            )
        return loop
    if stored is not None:
        op.log.warning("%s; starting afresh", why)
    return AgentLoop.start(provider=provider, model=model, prompt=op.prompt, fingerprint=print_)


def read_state(context: Mapping[str, Any], key: str, log: Any, *, after_deferral: bool = False) -> Any:
    store = context.get("task_state_store")
    if store is None:
        if after_deferral:
            log.warning("No loop state after deferral (no defer kwargs, no task_state_store)")
        else:
            log.info("task_state_store not available: a retry would start the agent loop afresh")
        return None
    try:
        return store.get(key)
    except Exception as exc:
        log.warning("Could not read task_state_store (%s); starting the agent loop afresh", exc)
        return None


def clear_state(context: Mapping[str, Any], key: str, log: Any) -> None:
    store = context.get("task_state_store")
    if store is None:
        return
    try:
        store.delete(key)
    except Exception as exc:
        log.warning("Could not clear the agent loop from task_state_store: %s", exc)


@dataclass
class WorkerHost:
    """The worker's side of the loop (``agent_loop.drive.LoopHost``): tools, rendering, ``task_state_store``."""

    spec: LoopSpec
    tool_specs: list[ToolSpec]
    run_tool: Callable[[Any], Any] | None
    logger: Any
    names_fn: Callable[[], Mapping[str, Any]]
    render_fn: Callable[[dict[str, Any], int], str]
    store: Any
    key: str
    round_log_level: int = logging.INFO

    def names(self) -> Mapping[str, Any]:
        return self.names_fn()

    def render_prompt(self, last: dict[str, Any], iteration: int) -> str:
        return self.render_fn(last, iteration)

    def save(self, loop: AgentLoop) -> None:
        if self.store is None:
            return
        try:
            self.store.set(self.key, loop.to_dict())
        except Exception as exc:
            self.logger.warning("Could not persist the agent loop to task_state_store: %s", exc)

    @classmethod
    def saver(cls, context: Mapping[str, Any], key: str, logger: Any) -> Callable[[AgentLoop], None]:
        """Only the persisting part of a host (for a loop that will not run here)."""
        host = cls(
            LoopSpec(), [], None, logger, dict, lambda last, i: "", context.get("task_state_store"), key
        )
        return host.save


# -- what leaves the task -------------------------------------------------------------------------


def note_outcome(context: Mapping[str, Any], exc: BaseException, log: Any) -> None:
    """
    Leave the reason of a failure or skip in XCom (``agent_error`` / ``skip_reason``) for the
    workflow result task, which otherwise only sees the task state. Scrubbed of keys and credential
    patterns: an endpoint may echo the request's headers in its error body.
    """
    key = "skip_reason" if isinstance(exc, AirflowSkipException) else "agent_error"
    try:
        context["ti"].xcom_push(key=key, value=scrub(f"{type(exc).__name__}: {exc}")[:MAX_REASON_CHARS])
    except Exception as push_error:
        log.debug("Could not record %s: %s", key, push_error)


def scrubbed_result(result: dict[str, Any]) -> dict[str, Any]:
    """The result with every text scrubbed of registered secrets and credential patterns."""
    scrubbed: dict[str, Any] = scrub_value(result)  # scrub_value keeps the shape it is given
    return scrubbed


def unguarded(response: LLMResponse, loop: AgentLoop, override: PriceOverride | None) -> GuardedResult:
    """Wrap a bare trigger response (no guard configured) so it is recorded like a guarded one."""
    from airflow_agent_provider.cost.pricing import price_call
    from airflow_agent_provider.guard.pipeline import GuardedResult
    from airflow_agent_provider.resilience.fallback import FallbackTarget

    return GuardedResult(
        response=response,
        target=FallbackTarget(loop.provider, loop.model),
        cost=price_call(loop.provider, response.model or loop.model, response.usage, override),
        requests=1,
    )
