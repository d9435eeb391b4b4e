"""
The workflow result task: one record of what a run did, and the run's final state.

It is the only leaf of a generated DAG and runs with ``all_done``, so it always runs and its own
state becomes the run's state: it fails when the outcome is ``failed`` and succeeds for ``success``
and ``partial`` (the outcome is in its XCom either way).

This module is the *collect* part of the result, the only one that talks to Airflow: task states,
run times and XComs become typed records (:mod:`airflow_agent_provider.results.records`). What they
mean is decided by :func:`airflow_agent_provider.results.compile.compile_result` (pure), the result's
shape is :class:`~airflow_agent_provider.results.workflow.WorkflowResult`, and the table in the task
log comes from :mod:`airflow_agent_provider.results.format`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_agent_provider.results import compile as _compile
from airflow_agent_provider.results.agent import AgentResult
from airflow_agent_provider.results.format import format_table as _format_table
from airflow_agent_provider.results.records import AgentMeta, AgentRecord, InstanceRecord, RunRecords
from airflow_agent_provider.results.workflow import AgentEntry, WorkflowResult

if TYPE_CHECKING:
    from airflow.sdk import Context

RESULT_TASK_ID = "workflow_result"

log = logging.getLogger(__name__)


# -- records from values already pulled -------------------------------------------------------


def _agent_result(value: Any, task_id: str) -> AgentResult | None:
    """A pulled XCom as an agent result; a value that is not one is logged and treated as none."""
    if isinstance(value, AgentResult) or value is None:
        return value
    try:
        return AgentResult.from_xcom(value)
    except ValueError as exc:
        log.warning("Agent %s left a result that cannot be read (%s); it counts as none", task_id, exc)
        return None


def run_records(
    *,
    workflow: str,
    dag_id: str,
    run_id: str,
    agents: Mapping[str, Mapping[str, Any]],
    states: Mapping[str, str | None],
    results: Mapping[str, Any],
    allow_partial_completion: bool,
    cost_budget: float | None,
    gates: Mapping[str, list[str]] | None = None,
    upstream: Mapping[str, list[str]] | None = None,
    instances: Mapping[str, list[Mapping[str, Any]]] | None = None,
    durations: Mapping[str, float | None] | None = None,
) -> RunRecords:
    """
    The typed records of a run from what was pulled: task states (agents and gates), agent
    results (XCom values or :class:`AgentResult`), and for mapped agents their instances as
    ``{"map_index", "state", "duration_s", "result"}``; ``durations`` are unmapped agents' run times.
    """
    instances = instances or {}
    durations = durations or {}
    records = {}
    for task_id, raw_meta in agents.items():
        records[task_id] = AgentRecord(
            meta=AgentMeta.model_validate(dict(raw_meta)),
            state=states.get(task_id),
            result=_agent_result(results.get(task_id), task_id),
            duration_s=durations.get(task_id),
            instances=[
                InstanceRecord(
                    map_index=int(inst["map_index"]),
                    state=inst.get("state"),
                    duration_s=inst.get("duration_s"),
                    result=_agent_result(inst.get("result"), task_id),
                )
                for inst in instances.get(task_id, [])
            ],
        )
    return RunRecords(
        workflow=workflow,
        dag_id=dag_id,
        run_id=run_id,
        agents=records,
        allow_partial_completion=allow_partial_completion,
        cost_budget=cost_budget,
        gates={gate: list(behind) for gate, behind in (gates or {}).items()},
        gate_states={gate: states.get(gate) for gate in gates or {}},
        upstream={task_id: list(ups) for task_id, ups in (upstream or {}).items()},
    )


def compile_result(**kwargs: Any) -> dict[str, Any]:
    """The XCom form of the run result from pulled values (keywords of :func:`run_records`)."""
    return _compile.compile_result(run_records(**kwargs)).to_dict()


def decide_outcome(agents: Mapping[str, Mapping[str, Any]], allow_partial_completion: bool) -> str:
    """:func:`airflow_agent_provider.results.compile.decide_outcome` over agent entries in XCom form."""
    return _compile.decide_outcome(
        [AgentEntry.model_validate(dict(a)) for a in agents.values()], allow_partial_completion
    )


def format_table(result: Mapping[str, Any] | WorkflowResult) -> str:
    """:func:`airflow_agent_provider.results.format.format_table` of a result in either form."""
    typed = result if isinstance(result, WorkflowResult) else WorkflowResult.from_xcom(result)
    if typed is None:
        raise ValueError("no workflow result")
    return _format_table(typed)


# -- collecting from Airflow ------------------------------------------------------------------


@dataclass(frozen=True)
class _TaskState:
    """One task instance of the run: ``map_index`` -1 for an unmapped (or unexpanded) task."""

    task_id: str
    map_index: int
    state: str | None
    duration_s: float | None


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def task_states(ti: Any, run_id: str, mapped: set[str]) -> list[_TaskState]:
    """
    Every task instance of the run, with its state and run time.

    Breadcrumbs keep map indexes apart and carry durations. An execution API without them gets
    ``get_task_states``, which folds map indexes into ``task_id_N`` keys (read back only for the
    ``mapped`` tasks, so a task named ``x_1`` is not taken for an item of ``x``) and has no times.
    """
    try:
        rows = [dict(row) for row in ti.get_task_breadcrumbs(dag_id=ti.dag_id, run_id=run_id)]
    except Exception as exc:
        log.debug("No task breadcrumbs (%s); durations of this run are unknown", exc)
    else:
        found = []
        for row in rows:
            state = row.get("state")
            state = getattr(state, "value", state)
            map_index = row.get("map_index")
            found.append(
                _TaskState(
                    task_id=row["task_id"],
                    map_index=-1 if map_index is None or map_index < 0 else int(map_index),
                    state=None if state is None else str(state),
                    duration_s=_rounded(row.get("duration")),
                )
            )
        return found
    raw = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})
    found = [_TaskState(key, -1, state, None) for key, state in raw.items()]
    for task_id in mapped:
        prefix = task_id + "_"
        found += [
            _TaskState(task_id, int(key[len(prefix) :]), state, None)
            for key, state in raw.items()
            if key.startswith(prefix) and key[len(prefix) :].isdigit()
        ]
    return found


def pull_record(ti: Any, task_id: str, state: str | None, map_index: int | None = None) -> AgentResult | None:
    """The agent's result, or for a failed / skipped agent the reason it left in XCom."""
    where: dict[str, Any] = {} if map_index is None else {"map_indexes": map_index}
    if state == "success":
        return _agent_result(ti.xcom_pull(task_ids=task_id, **where), task_id)
    if state == "failed":
        return AgentResult.failed(ti.xcom_pull(task_ids=task_id, key="agent_error", **where))
    if state == "skipped":
        record = _agent_result(ti.xcom_pull(task_ids=task_id, **where), task_id)
        if record is not None and record.skip_reason:
            return record  # a condition skip: the agent's skip record, with a clean reason
        reason = ti.xcom_pull(task_ids=task_id, key="skip_reason", **where)
        return AgentResult(status="skipped", skip_reason=reason)
    return None


class WorkflowResultOperator(BaseOperator):
    """
    Compile the result of a workflow run and decide its final state.

    :param workflow: Workflow name (recorded in the result).
    :param agents: Agent task id -> ``{"module", "agent", "critical"}``, plus for a ``for_each``
        agent ``"mapped": True`` and either its static ``"items"`` or the ``"items_task"`` that
        computed them (:class:`~airflow_agent_provider.results.records.AgentMeta`).
    :param allow_partial_completion: Whether failed non-critical agents still give a successful run.
    :param cost_budget: The run budget in USD, recorded for the reader of the result.
    :param gates: Budget gate task id -> the agent task ids right behind it.
    """

    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        workflow: str,
        agents: dict[str, dict[str, Any]],
        allow_partial_completion: bool = False,
        cost_budget: float | None = None,
        gates: dict[str, list[str]] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.workflow = workflow
        self.agents = agents
        self.allow_partial_completion = allow_partial_completion
        self.cost_budget = cost_budget
        self.gates = dict(gates or {})

    def collect(self, ti: Any, run_id: str) -> RunRecords:
        """The run's records: every agent's and gate's state, run time and XCom."""
        metas = {task_id: AgentMeta.model_validate(meta) for task_id, meta in self.agents.items()}
        rows = task_states(ti, run_id, {t for t, m in metas.items() if m.mapped})
        own = {r.task_id: r for r in rows if r.map_index < 0}
        records: dict[str, AgentRecord] = {}
        for task_id, meta in metas.items():
            row = own.get(task_id)
            state = row.state if row is not None else None
            result = pull_record(ti, task_id, state)
            instances = []
            if meta.mapped:
                instances = [
                    InstanceRecord(
                        r.map_index, r.state, r.duration_s, pull_record(ti, task_id, r.state, r.map_index)
                    )
                    for r in rows
                    if r.task_id == task_id and r.map_index >= 0
                ]
                if not instances and meta.items_task:
                    # Zero items: the reason is with the task that computed the list.
                    reason = ti.xcom_pull(task_ids=meta.items_task, key="skip_reason")
                    if reason:
                        result = AgentResult(status="skipped", skip_reason=reason)
            records[task_id] = AgentRecord(
                meta, state, result, row.duration_s if row is not None else None, instances
            )
        has_dag = self.has_dag()  # type: ignore[no-untyped-call]  # the SDK leaves has_dag unannotated
        return RunRecords(
            workflow=self.workflow,
            dag_id=ti.dag_id,
            run_id=run_id,
            agents=records,
            allow_partial_completion=self.allow_partial_completion,
            cost_budget=self.cost_budget,
            gates=self.gates,
            gate_states={g: own[g].state if g in own else None for g in self.gates},
            upstream={t: sorted(self.dag.get_task(t).upstream_task_ids) for t in self.agents}
            if has_dag
            else {},
        )

    def _workflow_limits(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The budgets and rate-limit rules the agent tasks carry (the factory gives each the same)."""
        budgets: dict[str, Any] = {"run": self.cost_budget, "daily": None, "monthly": None, "modules": {}}
        rules: list[dict[str, Any]] = []
        has_dag = self.has_dag()  # type: ignore[no-untyped-call]  # the SDK leaves has_dag unannotated
        for task_id, meta in self.agents.items():
            task = self.dag.get_task(task_id) if has_dag and self.dag.has_task(task_id) else None
            budget = getattr(task, "budget", None) or {}
            for name, key in (
                ("run", "run_cost_budget"),
                ("daily", "daily_budget"),
                ("monthly", "monthly_budget"),
            ):
                if budgets[name] is None and budget.get(key) is not None:
                    budgets[name] = budget[key]
            budgets["modules"].setdefault(meta["module"], budget.get("module_cost_budget"))
            if not rules:
                rules = [dict(r) for r in getattr(task, "rate_limits", None) or []]
        return budgets, rules

    def _record_run(self, context: Context, result: WorkflowResult, records: RunRecords) -> None:
        """
        Write the run record the Operations view lists (stores/runs_api.py). Best effort: the run's
        verdict is this task's state and XCom, so a store that cannot take the record is logged,
        not a failed run.
        """
        try:
            from airflow_agent_provider.hooks.store import get_store
            from airflow_agent_provider.stores.runs_api import run_record_from_result

            store = get_store()
            budgets, rules = self._workflow_limits()
            start = getattr(context.get("dag_run"), "start_date", None)
            store.run_record(
                run_record_from_result(
                    result.to_dict(),
                    agent_results={
                        t: r.result.to_dict() if r.result is not None else None
                        for t, r in records.agents.items()
                    },
                    budgets=budgets,
                    rate_limits=rules,
                    started_at=start.timestamp() if start is not None else None,
                    ended_at=store.store_time(),
                )
            )
        except Exception as exc:
            self.log.warning(
                "Could not record run %s in the agent store (the overview will not list it): %s",
                result.run_id,
                type(exc).__name__,
            )

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        records = self.collect(ti, context["run_id"])
        result = _compile.compile_result(records)
        self.log.info(
            "Workflow %s finished with outcome %s\n%s", self.workflow, result.outcome, _format_table(result)
        )
        self._record_run(context, result, records)
        if result.outcome == "failed":
            # Keep the record even though the task fails: the failure is the run's verdict, not lost data.
            ti.xcom_push(key="return_value", value=result.to_dict())
            raise AirflowFailException(
                f"Workflow {self.workflow} failed: agents that had to succeed did not: "
                f"{', '.join(_compile.failed_agents(result))}"
            )
        return result.to_dict()


__all__ = [
    "RESULT_TASK_ID",
    "WorkflowResultOperator",
    "compile_result",
    "decide_outcome",
    "format_table",
    "pull_record",
    "run_records",
    "task_states",
]
