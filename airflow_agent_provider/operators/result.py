"""
The workflow result task: one record of what a run did, and the run's final state.

It is the only leaf of a generated DAG and runs with ``all_done``, so it always runs and its own
state becomes the run's state: it fails when the outcome is ``failed`` and succeeds for ``success``
and ``partial`` (the outcome is in its XCom either way).

Result shape (stable; ``version`` changes only on incompatible changes)::

    {
      "version": 1, "workflow": str, "dag_id": str, "run_id": str,
      "outcome": "success" | "partial" | "failed",
      "allow_partial_completion": bool,
      "agents": {"Module.agent": {"module", "agent", "critical", "status", "reason",
                                  "provider", "model", "usage": {...}, "cost_usd", "cost_known",
                                  "rounds", "latency_s", "output",
                                  # added in the same version 1 (fields are only ever added):
                                  "gated", "duration_s", "stopped", "iterations",
                                  "mapped": bool, "items": [per item] | None}},
      "modules": {"Module": {"agents": int, "succeeded": int, "usage": {...}, "cost_usd": float}},
      "totals": {"usage": {...}, "cost_usd": float, "cost_complete": bool},
      "cost_budget": float | None,
      "gates": {"gate task id": state},
    }

``reason`` says why an agent did not succeed: its error, its skip reason (``condition '...' was
false``), ``not run: upstream X was skipped (...)``, or a budget gate. A mapped (``for_each``)
agent is one entry whose usage, cost, rounds, latency and duration are summed over its items, whose
``output`` is the list of item outputs (None where an item has none) in item order, and whose
``items`` lists ``{"map_index", "item", "status", "reason", "usage", "cost_usd", "latency_s",
"duration_s", "output"}`` per item. Its status is ``failed`` if an item failed, ``skipped`` if no
item ran (an empty ``for_each`` list or every item's condition false), else ``success``.
``duration_s`` is the task instances' run time from Airflow (None when not recorded).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from airflow_agent_provider.operators.control_flow import decode_agent_xcom

RESULT_TASK_ID = "workflow_result"

log = logging.getLogger(__name__)

_USAGE_KEYS = ("input_tokens", "output_tokens", "cached_input_tokens")

_REASONS = {
    "failed": "the agent failed; see its task log",
    "upstream_failed": "not run: an upstream agent it needs failed",
    "skipped": "skipped",
    "removed": "removed from the DAG",
    None: "did not run",
}


def _empty_usage() -> dict[str, int]:
    return dict.fromkeys(_USAGE_KEYS, 0)


def _add_usage(total: dict[str, int], usage: Mapping[str, Any] | None) -> None:
    for key in _USAGE_KEYS:
        total[key] += int((usage or {}).get(key) or 0)


#: Statuses that are part of a normal run: a skipped agent (its condition was false, or what it
#: depended on was skipped) did what the definition asked.
_NOT_MISSED = ("success", "skipped")


def _missed(agent: Mapping[str, Any]) -> bool:
    return agent["status"] not in _NOT_MISSED or agent.get("gated", False)


def decide_outcome(agents: Mapping[str, Mapping[str, Any]], allow_partial_completion: bool) -> str:
    """
    ``failed`` if an agent that had to succeed did not; ``partial`` if only optional agents failed
    or a budget gate held agents back; ``success`` otherwise. Agents held back by a closed budget
    gate are a decision of the definition, not a failure: they count like optional ones.
    """
    missed = [a for a in agents.values() if _missed(a)]
    if not missed:
        return "success"
    if not allow_partial_completion or any(a["critical"] and not a.get("gated") for a in missed):
        return "failed"
    return "partial"


def gated_agents(
    gates: Mapping[str, list[str]], states: Mapping[str, str | None], upstream: Mapping[str, list[str]]
) -> dict[str, str]:
    """Agents held back by a closed (skipped) gate, directly or through their upstreams: agent -> gate."""
    held: dict[str, str] = {}
    for gate, behind in gates.items():
        if states.get(gate) == "success":
            continue
        for agent in behind:
            held.setdefault(agent, gate)
    changed = True
    while changed:  # propagate to dependants that were skipped because of them
        changed = False
        for agent, ups in upstream.items():
            if agent not in held and states.get(agent) != "success":
                gate = next((held[u] for u in ups if u in held), None)
                if gate is not None:
                    held[agent] = gate
                    changed = True
    return held


_SKIP_PREFIX = "AirflowSkipException: "


def _own_reason(state: str | None, result: Mapping[str, Any]) -> str | None:
    """The reason an agent (or one item) left in XCom: a skip record, ``skip_reason`` or ``agent_error``."""
    if state not in ("skipped", "failed"):
        return None
    reason = result.get("skip_reason") or result.get("agent_error")
    if isinstance(reason, str) and reason.startswith(_SKIP_PREFIX):
        reason = reason[len(_SKIP_PREFIX) :]
    return reason or None


def _mapped_state(own_state: str | None, item_states: list[str | None]) -> str | None:
    """One state for a mapped agent: failed if an item failed, skipped if none ran, else success."""
    if not item_states:
        return own_state  # expanded to nothing (skipped) or never expanded (upstream_failed, not run)
    for bad in ("failed", "upstream_failed"):
        if bad in item_states:
            return bad
    if all(s == "skipped" for s in item_states):
        return "skipped"
    if all(s in ("success", "skipped") for s in item_states):
        return "success"
    return next(s for s in item_states if s not in ("success", "skipped"))


def _mapped_entry(
    own_state: str | None,
    own_result: Mapping[str, Any],
    instances: list[Mapping[str, Any]],
    meta: Mapping[str, Any],
) -> tuple[str | None, dict[str, Any]]:
    """Aggregate the items of a mapped agent into one state and one result-like dict."""
    static_items = meta.get("items")
    items: list[dict[str, Any]] = []
    usage = _empty_usage()
    cost: float | None = 0.0
    rounds = latency = duration = 0.0
    durations_known = True
    first_success: Mapping[str, Any] = {}
    for inst in sorted(instances, key=lambda i: i["map_index"]):
        state, result = inst.get("state"), inst.get("result") or {}
        index = inst["map_index"]
        item = result.get(
            "item", static_items[index] if static_items and index < len(static_items) else inst.get("item")
        )
        item_usage = _empty_usage()
        _add_usage(item_usage, result.get("usage"))
        _add_usage(usage, item_usage)
        if state == "success":
            first_success = first_success or result
            if result.get("cost_usd") is None or cost is None:
                cost = None
            else:
                cost += result["cost_usd"]
        rounds += result.get("rounds") or 0
        latency += result.get("latency_s") or 0.0
        if inst.get("duration_s") is None:
            durations_known = False
        else:
            duration += inst["duration_s"]
        items.append(
            {
                "map_index": index,
                "item": item,
                "status": state or "not_run",
                "reason": _own_reason(state, result)
                or (None if state == "success" else _REASONS.get(state, f"ended as {state}")),
                "usage": item_usage,
                "cost_usd": result.get("cost_usd"),
                "latency_s": result.get("latency_s"),
                "duration_s": inst.get("duration_s"),
                "output": result.get("output", result.get("text")) if state == "success" else None,
            }
        )
    state = _mapped_state(own_state, [i["status"] if i["status"] != "not_run" else None for i in items])
    combined: dict[str, Any] = {
        "provider": first_success.get("provider"),
        "model": first_success.get("model"),
        "usage": usage,
        "cost_usd": None if cost is None else round(cost, 10),
        "cost_known": cost is not None,
        "rounds": int(rounds) if items else None,
        "latency_s": round(latency, 6) if items else None,
        "duration_s": round(duration, 3) if items and durations_known else None,
        "output": [i["output"] for i in items],
        "items": items,
    }
    if not items:
        combined["skip_reason"] = own_result.get("skip_reason")
    return state, combined


def compile_result(
    *,
    workflow: str,
    dag_id: str,
    run_id: str,
    agents: Mapping[str, Mapping[str, Any]],
    states: Mapping[str, str | None],
    results: Mapping[str, Mapping[str, Any] | None],
    allow_partial_completion: bool,
    cost_budget: float | None,
    gates: Mapping[str, list[str]] | None = None,
    upstream: Mapping[str, list[str]] | None = None,
    instances: Mapping[str, list[Mapping[str, Any]]] | None = None,
    durations: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """
    Build the run result from task states and agent results (pure: tested without Airflow).

    :param instances: For mapped agents (meta ``mapped: true``): their task instances as
        ``{"map_index", "state", "duration_s", "result"}``; ``states``/``results`` then hold the
        unexpanded task (map index -1), which exists when the agent had no item to run.
    :param durations: Task id -> run time in seconds of unmapped agents.
    """
    instances = instances or {}
    durations = durations or {}
    states = dict(states)
    merged: dict[str, Mapping[str, Any] | None] = dict(results)
    for task_id, meta in agents.items():
        if meta.get("mapped"):
            states[task_id], merged[task_id] = _mapped_entry(
                states.get(task_id), results.get(task_id) or {}, list(instances.get(task_id, [])), meta
            )
    results = merged
    held = gated_agents(gates or {}, states, upstream or {})
    per_agent: dict[str, dict[str, Any]] = {}
    modules: dict[str, dict[str, Any]] = {}
    total_usage = _empty_usage()
    total_cost = 0.0
    cost_complete = True
    for task_id, meta in agents.items():
        state = states.get(task_id)
        result = results.get(task_id) or {}
        status = "success" if state == "success" else (state or "not_run")
        if task_id in held:
            reason = f"held back: budget gate {held[task_id]} was closed (spend limit reached)"
        elif _own_reason(state, result):
            reason = _own_reason(state, result)
        else:
            reason = None if status == "success" else _REASONS.get(state, f"ended as {state}")
        usage = _empty_usage()
        _add_usage(usage, result.get("usage"))
        cost = result.get("cost_usd")
        if status == "success" and cost is None:
            cost_complete = False
        per_agent[task_id] = {
            "module": meta["module"],
            "agent": meta["agent"],
            "critical": bool(meta["critical"]),
            "status": status,
            "gated": task_id in held,
            "reason": reason,
            "provider": result.get("provider"),
            "model": result.get("model"),
            "usage": usage,
            "cost_usd": cost,
            "cost_known": result.get("cost_known", cost is not None),
            "rounds": result.get("rounds"),
            "latency_s": result.get("latency_s"),
            "output": result.get("output", result.get("text")),
            "duration_s": result.get("duration_s", durations.get(task_id)),
            "stopped": result.get("stopped"),
            "iterations": result.get("iterations"),
            "mapped": bool(meta.get("mapped")),
            "items": result.get("items"),
        }
        mod = modules.setdefault(
            meta["module"], {"agents": 0, "succeeded": 0, "usage": _empty_usage(), "cost_usd": 0.0}
        )
        mod["agents"] += 1
        mod["succeeded"] += status == "success"
        _add_usage(mod["usage"], usage)
        _add_usage(total_usage, usage)
        if cost is not None:
            mod["cost_usd"] += cost
            total_cost += cost
    _explain_upstream_skips(per_agent, upstream or {})
    return {
        "version": 1,
        "workflow": workflow,
        "dag_id": dag_id,
        "run_id": run_id,
        "outcome": decide_outcome(per_agent, allow_partial_completion),
        "allow_partial_completion": allow_partial_completion,
        "agents": per_agent,
        "modules": modules,
        "totals": {"usage": total_usage, "cost_usd": round(total_cost, 8), "cost_complete": cost_complete},
        "cost_budget": cost_budget,
        "gates": {gate: states.get(gate) for gate in (gates or {})},
    }


def _explain_upstream_skips(per_agent: dict[str, dict[str, Any]], upstream: Mapping[str, list[str]]) -> None:
    """A dependant skipped by its trigger rule says which skipped upstream it followed, and why."""
    changed = True
    while changed:
        changed = False
        for task_id, entry in per_agent.items():
            if entry["status"] != "skipped" or entry["reason"] != _REASONS["skipped"]:
                continue
            skipped_ups = [
                u
                for u in upstream.get(task_id, [])
                if per_agent.get(u, {}).get("status") == "skipped"
                and per_agent[u]["reason"] != _REASONS["skipped"]
            ]
            if skipped_ups:
                first = per_agent[skipped_ups[0]]
                entry["reason"] = f"not run: upstream {skipped_ups[0]} was skipped ({first['reason']})"
                changed = True


def format_table(result: Mapping[str, Any]) -> str:
    """A per-agent table of status, tokens and cost, as printed by the demo and the task log."""
    rows = [("agent", "status", "model", "in", "out", "cost_usd")]
    for task_id, a in result["agents"].items():
        cost = (
            "unknown" if a["cost_usd"] is None and a["status"] == "success" else f"{a['cost_usd'] or 0:.6f}"
        )
        rows.append(
            (
                task_id
                + (
                    f" [{len(a['items'])} item{'' if len(a['items']) == 1 else 's'}]"
                    if a.get("items") is not None
                    else ""
                )
                + ("" if a["critical"] else " (optional)"),
                a["status"],
                a["model"] or "-",
                str(a["usage"]["input_tokens"]),
                str(a["usage"]["output_tokens"]),
                cost,
            )
        )
    totals = result["totals"]
    rows.append(
        (
            "TOTAL",
            result["outcome"],
            "",
            str(totals["usage"]["input_tokens"]),
            str(totals["usage"]["output_tokens"]),
            f"{totals['cost_usd']:.6f}" + ("" if totals["cost_complete"] else " (+unknown)"),
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class WorkflowResultOperator(BaseOperator):
    """
    Compile the result of a workflow run and decide its final state.

    :param workflow: Workflow name (recorded in the result).
    :param agents: Agent task id -> ``{"module", "agent", "critical"}``, plus for a ``for_each``
        agent ``"mapped": True`` and either its static ``"items"`` or the ``"items_task"`` that
        computed them.
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

    @staticmethod
    def _agent_record(
        ti: Any, task_id: str, state: str | None, map_index: int | None = None
    ) -> dict[str, Any] | None:
        """The agent's result, or for a failed / skipped agent the reason it left in XCom."""
        where: dict[str, Any] = {} if map_index is None else {"map_indexes": map_index}
        if state == "success":
            return decode_agent_xcom(ti.xcom_pull(task_ids=task_id, **where))
        if state == "failed":
            return {"agent_error": ti.xcom_pull(task_ids=task_id, key="agent_error", **where)}
        if state == "skipped":
            record = decode_agent_xcom(ti.xcom_pull(task_ids=task_id, **where))
            if isinstance(record, dict) and record.get("skip_reason"):
                return record  # a condition skip: the agent's skip record, with a clean reason
            return {"skip_reason": ti.xcom_pull(task_ids=task_id, key="skip_reason", **where)}
        return None

    @staticmethod
    def _task_instances(ti: Any, run_id: str) -> list[dict[str, Any]] | None:
        """
        ``(task_id, map_index, state, duration)`` of every finished task instance of the run.

        Breadcrumbs keep map indexes apart (``get_task_states`` folds them into ``task_id_N`` keys,
        which a task named ``x_1`` could be confused with) and carry durations. None when the
        execution API does not offer them; the caller then falls back to ``get_task_states``.
        """
        try:
            return [dict(row) for row in ti.get_task_breadcrumbs(dag_id=ti.dag_id, run_id=run_id)]
        except Exception as exc:
            log.debug("No task breadcrumbs (%s); durations of this run are unknown", exc)
            return None

    def _workflow_limits(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The budgets and rate-limit rules the agent tasks carry (the factory gives each the same)."""
        budgets: dict[str, Any] = {"run": self.cost_budget, "daily": None, "monthly": None, "modules": {}}
        rules: list[dict[str, Any]] = []
        for task_id, meta in self.agents.items():
            task = self.dag.get_task(task_id) if self.has_dag() and self.dag.has_task(task_id) else None
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

    def _record_run(self, context: Context, result: dict[str, Any], results: Mapping[str, Any]) -> None:
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
                    result,
                    agent_results=dict(results),
                    budgets=budgets,
                    rate_limits=rules,
                    started_at=start.timestamp() if start is not None else None,
                    ended_at=store.store_time(),
                )
            )
        except Exception as exc:
            self.log.warning(
                "Could not record run %s in the agent store (the overview will not list it): %s",
                result.get("run_id"),
                type(exc).__name__,
            )

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        run_id = context["run_id"]
        rows = self._task_instances(ti, run_id)
        durations: dict[str, float | None] = {}
        by_index: dict[str, list[dict[str, Any]]] = {}
        if rows is None:
            raw_states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})
            states = {task_id: raw_states.get(task_id) for task_id in [*self.agents, *self.gates]}
            for task_id, meta in self.agents.items():
                if meta.get("mapped"):
                    prefix = task_id + "_"
                    by_index[task_id] = [
                        {"map_index": int(k[len(prefix) :]), "state": v, "duration_s": None}
                        for k, v in raw_states.items()
                        if k.startswith(prefix) and k[len(prefix) :].isdigit()
                    ]
        else:
            states = {}
            for row in rows:
                task_id, map_index, state = row["task_id"], row.get("map_index", -1), row.get("state")
                state = getattr(state, "value", state)
                state = None if state is None else str(state)
                duration = row.get("duration")
                if map_index is None or map_index < 0:
                    states[task_id] = state
                    durations[task_id] = None if duration is None else round(float(duration), 3)
                else:
                    by_index.setdefault(task_id, []).append(
                        {
                            "map_index": map_index,
                            "state": state,
                            "duration_s": None if duration is None else round(float(duration), 3),
                        }
                    )
            states = {task_id: states.get(task_id) for task_id in [*self.agents, *self.gates]}
        results = {task_id: self._agent_record(ti, task_id, states[task_id]) for task_id in self.agents}
        instances: dict[str, list[dict[str, Any]]] = {}
        for task_id, meta in self.agents.items():
            if not meta.get("mapped"):
                continue
            instances[task_id] = [
                {**inst, "result": self._agent_record(ti, task_id, inst["state"], inst["map_index"])}
                for inst in by_index.get(task_id, [])
            ]
            if not instances[task_id] and meta.get("items_task"):
                # Zero items: the reason is with the task that computed the list.
                reason = ti.xcom_pull(task_ids=meta["items_task"], key="skip_reason")
                if reason:
                    results[task_id] = {"skip_reason": reason}
        upstream = (
            {t: sorted(self.dag.get_task(t).upstream_task_ids) for t in self.agents} if self.has_dag() else {}
        )
        result = compile_result(
            workflow=self.workflow,
            dag_id=ti.dag_id,
            run_id=run_id,
            agents=self.agents,
            states=states,
            results=results,
            allow_partial_completion=self.allow_partial_completion,
            cost_budget=self.cost_budget,
            gates=self.gates,
            upstream=upstream,
            instances=instances,
            durations=durations,
        )
        self.log.info(
            "Workflow %s finished with outcome %s\n%s", self.workflow, result["outcome"], format_table(result)
        )
        self._record_run(context, result, results)
        if result["outcome"] == "failed":
            # Keep the record even though the task fails: the failure is the run's verdict, not lost data.
            ti.xcom_push(key="return_value", value=result)
            failed = [
                t
                for t, a in result["agents"].items()
                if _missed(a) and (not self.allow_partial_completion or (a["critical"] and not a["gated"]))
            ]
            raise AirflowFailException(
                f"Workflow {self.workflow} failed: agents that had to succeed did not: {', '.join(failed)}"
            )
        return result
