"""
Runtime side of the control-flow fields: conditions, ``for_each`` lists, loops, structured answers.

The definitions layer compiles every expression when a file is loaded; this module evaluates them
while a run is going, over plain data (upstream results as dicts, the run's params, the item of a
mapped agent, the agent's last answer). Nothing here calls ``eval``: expressions only go through
:mod:`airflow_agent_provider.definitions.expressions`.

Why ``for_each`` over an expression needs its own small task: Airflow expands a mapped task over a
*list* XCom, and the scheduler sizes the expansion from that XCom before the mapped task starts.
An agent's XCom is a result dict, not a list, so :class:`ForEachItemsOperator` evaluates the
expression over the upstream results and returns the list the agent expands over. An empty list
gives zero task instances and Airflow marks the mapped agent ``skipped``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

# One class and one validator for the worker, deferred and triggerer paths: an ``except`` must catch
# every copy, and an answer must be judged the same way on each.
from airflow_agent_provider.agent_loop.state import OutputValidationError, validate_output
from airflow_agent_provider.definitions.expressions import (
    Expression,
    ExpressionError,
    compile_expression,
)
from airflow_agent_provider.definitions.models import (  # the names each expression may read
    FOR_EACH_NAMES,
    MAX_FOR_EACH_ITEMS,
)
from airflow_agent_provider.llm.prompt import build_results, is_available, upstream_text

if TYPE_CHECKING:
    from airflow.sdk import Context

#: XCom key under which a skipped task records why (also in its ``return_value`` for agents).
SKIP_REASON_KEY = "skip_reason"


def plain_params(params: Any) -> dict[str, Any]:
    """The run's params as a plain dict (Airflow's ``ParamsDict`` resolves ``Param`` objects on read)."""
    if not params:
        return {}
    return {key: params[key] for key in params}


def compile_checked(text: str | None, names: frozenset[str], field: str) -> Expression | None:
    """Compile an operator's expression argument; a bad one is a DAG import error naming the field."""
    if text is None:
        return None
    try:
        return compile_expression(text, names)
    except ExpressionError as exc:
        raise ValueError(f"invalid {field} expression {text!r}: {exc}") from None


def unavailable_sources(expression: Expression, results: Mapping[str, Any]) -> list[str]:
    """The upstream aliases an expression reads through ``results`` that have no usable result."""
    missing = []
    for alias in sorted(expression.keys.get("results", ())):
        entry = results.get(alias)
        if isinstance(entry, list):
            if not entry or not all(is_available(e) for e in entry):
                missing.append(alias)
        elif not is_available(entry):
            missing.append(alias)
    return missing


def skip_record(
    reason: str, *, task_id: str, agent: Mapping[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """The ``return_value`` a skipped agent leaves behind (:meth:`AgentResult.skipped`, XCom form)."""
    from airflow_agent_provider.results.agent import AgentResult

    return AgentResult.skipped(reason, task_id=task_id, agent=agent, **extra).to_dict()


class ForEachItemsOperator(BaseOperator):
    """
    Evaluate an agent's ``for_each`` expression and return the list its mapped task expands over.

    Runs right after the agent's upstreams, with the agent's trigger rule. When an upstream the
    expression reads has no result (a failed optional agent), or the list is empty, it returns ``[]``
    and records why under the XCom key ``skip_reason``: the mapped agent then has zero instances
    and is skipped, and the workflow result shows that reason.

    :param expression: The ``for_each`` expression (names ``results`` and ``params``).
    :param upstream_tasks: ``{alias: upstream task_id}``, as for the agent.
    :param agent_task_id: The mapped agent, for messages.
    """

    ui_color = "#f3e8fd"

    def __init__(
        self, *, expression: str, upstream_tasks: dict[str, str], agent_task_id: str, **kwargs: Any
    ) -> None:
        kwargs.setdefault("retries", 0)  # deterministic: a retry would compute the same list
        super().__init__(**kwargs)
        self.expression = expression
        self.upstream_tasks = dict(upstream_tasks)
        self.agent_task_id = agent_task_id
        compile_checked(expression, FOR_EACH_NAMES, "for_each")

    def execute(self, context: Context) -> list[Any]:
        expression = compile_checked(self.expression, FOR_EACH_NAMES, "for_each")
        if expression is None:  # only a None text compiles to None; the constructor requires a str
            raise ValueError("for_each needs an expression")
        ti = context["ti"]
        results = upstream_results(self, context, self.upstream_tasks)
        missing = unavailable_sources(expression, results)
        if missing:
            return self._no_items(
                ti, f"for_each {self.expression!r} not evaluated: upstream {missing} produced no result"
            )
        try:
            items = expression.evaluate({"results": results, "params": plain_params(context.get("params"))})
        except ExpressionError as exc:
            raise ValueError(
                f"agent {self.agent_task_id}: for_each {self.expression!r} failed: {exc}"
            ) from None
        if isinstance(items, tuple):
            items = list(items)
        if not isinstance(items, list):
            raise TypeError(
                f"agent {self.agent_task_id}: for_each {self.expression!r} must give a list, "
                f"got {type(items).__name__}: {items!r:.200}"
            )
        if len(items) > MAX_FOR_EACH_ITEMS:
            raise ValueError(
                f"agent {self.agent_task_id}: for_each {self.expression!r} gave {len(items)} items; "
                f"at most {MAX_FOR_EACH_ITEMS} (Airflow's max_map_length)"
            )
        if not items:
            return self._no_items(ti, f"for_each {self.expression!r} gave an empty list")
        self.log.info("Agent %s runs once per item: %d item(s)", self.agent_task_id, len(items))
        return items

    def _no_items(self, ti: Any, reason: str) -> list[Any]:
        self.log.info("Agent %s is skipped: %s", self.agent_task_id, reason)
        ti.xcom_push(key=SKIP_REASON_KEY, value=reason)
        return []


def upstream_results(
    task: BaseOperator, context: Context, upstream_tasks: Mapping[str, str]
) -> dict[str, Any]:
    """
    ``results`` for expressions and prompts: alias and task id -> result dict.

    A mapped upstream (``for_each``) gives a *list* of result dicts in item (map index) order; an
    instance without a result is an "unavailable" entry at its place, and an upstream that expanded
    to nothing gives ``[]``.
    """
    ti = context["ti"]
    pulled: dict[str, Any] = {}
    mapped: dict[str, list[Any]] = {}
    for task_id in dict.fromkeys(upstream_tasks.values()):
        if is_mapped_upstream(task, task_id):
            mapped[task_id] = pull_mapped(ti, task_id, context["run_id"])
        else:
            pulled[task_id] = decode_agent_xcom(ti.xcom_pull(task_ids=task_id))
    results: dict[str, Any] = build_results(
        {a: t for a, t in upstream_tasks.items() if t not in mapped}, pulled
    )
    for alias, task_id in upstream_tasks.items():
        if task_id in mapped:
            entries = [build_results({task_id: task_id}, {task_id: v})[task_id] for v in mapped[task_id]]
            results[alias] = results[task_id] = entries
    return results


def decode_agent_xcom(value: Any) -> Any:
    """
    An agent's XCom as the dict it was written as, whichever process wrote it (a list of them for
    a mapped task): :func:`airflow_agent_provider.results.agent.decode_json_object` per value.
    """
    from airflow_agent_provider.results.agent import decode_json_object

    if isinstance(value, list):
        return [decode_agent_xcom(v) for v in value]
    return decode_json_object(value)


def flat_upstream_text(upstream_tasks: Mapping[str, str], results: Mapping[str, Any]) -> str:
    """
    ``upstream_text``: each upstream once (under its first alias, although prompts may use any),
    and a mapped upstream's results as one labelled section per item.
    """
    flat_tasks: dict[str, str] = {}
    flat_results: dict[str, Any] = {}
    shown: set[str] = set()
    for alias, task_id in upstream_tasks.items():
        if task_id in shown:
            continue
        shown.add(task_id)
        entry = results.get(alias)
        if isinstance(entry, list):
            for index, item_result in enumerate(entry):
                label = f"{alias}[{index}]"
                if "item" in item_result:
                    label += f" (item {json.dumps(item_result['item'], default=str, ensure_ascii=False)})"
                flat_tasks[label] = f"{task_id}[{index}]"
                flat_results[label] = item_result
            if not entry:
                flat_tasks[alias] = task_id
                flat_results[alias] = {"status": "skipped", "reason": "no items", "text": ""}
        else:
            flat_tasks[alias] = task_id
            flat_results[alias] = entry
    return upstream_text(flat_tasks, flat_results)


def is_mapped_upstream(task: BaseOperator, task_id: str) -> bool:
    """Whether ``task_id`` in ``task``'s DAG is a mapped task (False without a DAG, as in unit tests)."""
    if not task.has_dag():  # type: ignore[no-untyped-call]  # Airflow's BaseOperator.has_dag is unannotated
        return False
    try:
        return bool(task.dag.get_task(task_id).is_mapped)
    except Exception:
        return False


def pull_mapped(ti: Any, task_id: str, run_id: str) -> list[Any]:
    """Every map index's ``return_value`` of a mapped task, in map index order (None where absent)."""
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id], task_ids=[task_id]).get(run_id, {})
    indexes = sorted(
        int(key[len(task_id) + 1 :])
        for key in states
        if key.startswith(task_id + "_") and key[len(task_id) + 1 :].isdigit()
    )
    if not indexes:
        return []
    values = ti.xcom_pull(task_ids=task_id, map_indexes=indexes)
    values = list(values) if isinstance(values, Sequence) and not isinstance(values, str) else [values]
    return [decode_agent_xcom(v) for v in values]


__all__ = [
    "SKIP_REASON_KEY",
    "decode_agent_xcom",
    "ForEachItemsOperator",
    "OutputValidationError",
    "compile_checked",
    "plain_params",
    "skip_record",
    "unavailable_sources",
    "upstream_results",
    "validate_output",
]
