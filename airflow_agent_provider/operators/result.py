"""The workflow result task: one record of what a run did, and the run's final state.

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
                                  "rounds", "latency_s", "output"}},
      "modules": {"Module": {"agents": int, "succeeded": int, "usage": {...}, "cost_usd": float}},
      "totals": {"usage": {...}, "cost_usd": float, "cost_complete": bool},
      "cost_budget": float | None,
    }
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

RESULT_TASK_ID = "workflow_result"

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


def gated_agents(gates: Mapping[str, list[str]], states: Mapping[str, str | None], upstream: Mapping[str, list[str]]) -> dict[str, str]:
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
) -> dict[str, Any]:
    """Build the run result from task states and agent results (pure: tested without Airflow)."""
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
        elif state in ("skipped", "failed") and (result.get("skip_reason") or result.get("agent_error")):
            reason = result.get("skip_reason") or result.get("agent_error")
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


def format_table(result: Mapping[str, Any]) -> str:
    """A per-agent table of status, tokens and cost, as printed by the demo and the task log."""
    rows = [("agent", "status", "model", "in", "out", "cost_usd")]
    for task_id, a in result["agents"].items():
        cost = "unknown" if a["cost_usd"] is None and a["status"] == "success" else f"{a['cost_usd'] or 0:.6f}"
        rows.append(
            (
                task_id + ("" if a["critical"] else " (optional)"),
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
    :param agents: Agent task id -> ``{"module", "agent", "critical"}``.
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
    def _agent_record(ti: Any, task_id: str, state: str | None) -> dict[str, Any] | None:
        """The agent's result, or for a failed / skipped agent the reason it left in XCom."""
        if state == "success":
            return ti.xcom_pull(task_ids=task_id)
        if state == "failed":
            return {"agent_error": ti.xcom_pull(task_ids=task_id, key="agent_error")}
        if state == "skipped":
            return {"skip_reason": ti.xcom_pull(task_ids=task_id, key="skip_reason")}
        return None

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        run_id = context["run_id"]
        raw_states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})
        states = {task_id: raw_states.get(task_id) for task_id in [*self.agents, *self.gates]}
        results = {task_id: self._agent_record(ti, task_id, states[task_id]) for task_id in self.agents}
        upstream = {t: sorted(self.dag.get_task(t).upstream_task_ids) for t in self.agents} if self.has_dag() else {}
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
        )
        self.log.info("Workflow %s finished with outcome %s\n%s", self.workflow, result["outcome"], format_table(result))
        if result["outcome"] == "failed":
            # Keep the record even though the task fails: the failure is the run's verdict, not lost data.
            ti.xcom_push(key="return_value", value=result)
            failed = [
                t for t, a in result["agents"].items()
                if _missed(a) and (not self.allow_partial_completion or (a["critical"] and not a["gated"]))
            ]
            raise AirflowFailException(
                f"Workflow {self.workflow} failed: agents that had to succeed did not: {', '.join(failed)}"
            )
        return result
