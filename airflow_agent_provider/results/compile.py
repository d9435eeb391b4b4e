"""
Compile a run's records into its :class:`~airflow_agent_provider.results.workflow.WorkflowResult`.

Pure: no Airflow, no store; the result task collects the records, this decides what they mean.
The two judgements every reader of a result depends on are made here and only here:

- :func:`reason_for`: why an agent (or one item of a mapped agent) did not succeed;
- :func:`missed` / :func:`had_to_succeed`: whether it counts against the run, and whether the run
  fails because of it (:func:`decide_outcome`, :func:`failed_agents`).

A mapped (``for_each``) agent is one entry whose usage, cost, rounds, latency and duration are
summed over its items, whose ``output`` is the list of item outputs (None where an item has none)
in item order, and whose ``items`` lists one entry per item. Its status is ``failed`` if an item
failed, ``skipped`` if no item ran (an empty ``for_each`` list or every item's condition false),
else ``success``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from airflow_agent_provider.results.agent import AgentResult, TokenUsage
from airflow_agent_provider.results.workflow import (
    AgentEntry,
    ItemEntry,
    ModuleTotals,
    Outcome,
    RunTotals,
    WorkflowResult,
)

if TYPE_CHECKING:
    from airflow_agent_provider.results.records import AgentRecord, RunRecords

#: What a state means when the agent left no reason of its own.
REASONS: dict[str | None, str] = {
    "failed": "the agent failed; see its task log",
    "upstream_failed": "not run: an upstream agent it needs failed",
    "skipped": "skipped",
    "removed": "removed from the DAG",
    None: "did not run",
}

#: Statuses that are part of a normal run: a skipped agent (its condition was false, or what it
#: depended on was skipped) did what the definition asked.
NOT_MISSED = ("success", "skipped")


def reason_for(state: str | None, result: AgentResult | None, gate: str | None = None) -> str | None:
    """
    Why an agent or item in ``state`` did not succeed (None when it did): the closed budget
    ``gate`` that held it back, else the reason its record gives, else what the state means.
    """
    if gate is not None:
        return f"held back: budget gate {gate} was closed (spend limit reached)"
    if state in ("skipped", "failed") and result is not None and result.own_reason:
        return result.own_reason
    if state == "success":
        return None
    return REASONS.get(state, f"ended as {state}")


def missed(entry: AgentEntry) -> bool:
    """Whether the agent did not do what the definition asked (a failure, or held back by a gate)."""
    return entry.status not in NOT_MISSED or entry.gated


def had_to_succeed(entry: AgentEntry, allow_partial_completion: bool) -> bool:
    """
    Whether missing this agent fails the run. Agents held back by a closed budget gate are a
    decision of the definition, not a failure: they count like optional ones.
    """
    return not allow_partial_completion or (entry.critical and not entry.gated)


def decide_outcome(agents: Iterable[AgentEntry], allow_partial_completion: bool) -> Outcome:
    """
    ``failed`` if an agent that had to succeed did not; ``partial`` if only optional agents failed
    or a budget gate held agents back; ``success`` otherwise.
    """
    missing = [a for a in agents if missed(a)]
    if not missing:
        return "success"
    if any(had_to_succeed(a, allow_partial_completion) for a in missing):
        return "failed"
    return "partial"


def failed_agents(result: WorkflowResult) -> list[str]:
    """The task ids of the agents that made the run fail."""
    return [
        task_id
        for task_id, entry in result.agents.items()
        if missed(entry) and had_to_succeed(entry, result.allow_partial_completion)
    ]


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
                via = next((held[u] for u in ups if u in held), None)
                if via is not None:
                    held[agent] = via
                    changed = True
    return held


def _status(state: str | None) -> str:
    return state or "not_run"


def _mapped_state(own_state: str | None, item_states: list[str | None]) -> str | None:
    """One state for a mapped agent: failed if an item failed, skipped if none ran, else success."""
    if not item_states:
        return own_state  # expanded to nothing (skipped) or never expanded (upstream_failed, not run)
    for bad in ("failed", "upstream_failed"):
        if bad in item_states:
            return bad
    if all(s == "skipped" for s in item_states):
        return "skipped"
    if all(s in NOT_MISSED for s in item_states):
        return "success"
    return next(s for s in item_states if s not in NOT_MISSED)


def _mapped_entry(record: AgentRecord) -> tuple[str | None, AgentEntry]:
    """A mapped agent's items summed into one entry; its state (before gates and upstream skips)."""
    static_items = record.meta.items
    items: list[ItemEntry] = []
    usage = TokenUsage()
    cost: float | None = 0.0
    rounds = latency = duration = 0.0
    durations_known = True
    first_success: AgentResult | None = None
    for inst in sorted(record.instances, key=lambda i: i.map_index):
        result = inst.result or AgentResult()
        index = inst.map_index
        if result.has("item"):
            item = result.item
        else:
            item = static_items[index] if static_items and index < len(static_items) else None
        usage += result.usage
        if inst.state == "success":
            first_success = first_success or result
            cost = None if result.cost_usd is None or cost is None else cost + result.cost_usd
        rounds += result.rounds or 0
        latency += result.latency_s or 0.0
        if inst.duration_s is None:
            durations_known = False
        else:
            duration += inst.duration_s
        items.append(
            ItemEntry(
                map_index=index,
                item=item,
                status=_status(inst.state),
                reason=reason_for(inst.state, result),
                usage=result.usage,
                cost_usd=result.cost_usd,
                latency_s=result.latency_s,
                duration_s=inst.duration_s,
                output=result.answer if inst.state == "success" else None,
            )
        )
    state = _mapped_state(record.state, [None if i.status == "not_run" else i.status for i in items])
    own = record.result if not items else None  # the reason of an agent with no item is its own
    entry = AgentEntry(
        module=record.meta.module,
        agent=record.meta.agent,
        critical=record.meta.critical,
        status=_status(state),
        reason=reason_for(state, own),
        provider=first_success.provider if first_success else None,
        model=first_success.model if first_success else None,
        usage=usage,
        cost_usd=None if cost is None else round(cost, 10),
        cost_known=cost is not None,
        rounds=int(rounds) if items else None,
        latency_s=round(latency, 6) if items else None,
        output=[i.output for i in items],
        duration_s=round(duration, 3) if items and durations_known else None,
        mapped=True,
        items=items,
    )
    return state, entry


def _plain_entry(record: AgentRecord) -> AgentEntry:
    result = record.result or AgentResult()
    return AgentEntry(
        module=record.meta.module,
        agent=record.meta.agent,
        critical=record.meta.critical,
        status=_status(record.state),
        reason=reason_for(record.state, result),
        provider=result.provider,
        model=result.model,
        usage=result.usage,
        cost_usd=result.cost_usd,
        cost_known=result.cost_known if result.cost_known is not None else result.cost_usd is not None,
        rounds=result.rounds,
        latency_s=result.latency_s,
        output=result.answer,
        duration_s=record.duration_s,
        stopped=result.stopped,
        iterations=result.iterations,
    )


def _explain_upstream_skips(agents: dict[str, AgentEntry], upstream: Mapping[str, list[str]]) -> None:
    """A dependant skipped by its trigger rule says which skipped upstream it followed, and why."""
    changed = True
    while changed:
        changed = False
        for task_id, entry in agents.items():
            if entry.status != "skipped" or entry.reason != REASONS["skipped"]:
                continue
            skipped_ups = [
                u
                for u in upstream.get(task_id, [])
                if u in agents and agents[u].status == "skipped" and agents[u].reason != REASONS["skipped"]
            ]
            if skipped_ups:
                first = agents[skipped_ups[0]]
                entry.reason = f"not run: upstream {skipped_ups[0]} was skipped ({first.reason})"
                changed = True


def compile_result(records: RunRecords) -> WorkflowResult:
    """The run's result from its records (see the module docstring)."""
    entries: dict[str, AgentEntry] = {}
    states: dict[str, str | None] = dict(records.gate_states)
    for task_id, record in records.agents.items():
        if record.meta.mapped:
            states[task_id], entries[task_id] = _mapped_entry(record)
        else:
            states[task_id], entries[task_id] = record.state, _plain_entry(record)
    held = gated_agents(records.gates, states, records.upstream)
    modules: dict[str, ModuleTotals] = {}
    totals = RunTotals()
    for task_id, entry in entries.items():
        if task_id in held:
            entry.gated = True
            entry.reason = reason_for(states[task_id], None, held[task_id])
        if entry.status == "success" and entry.cost_usd is None:
            totals.cost_complete = False
        module = modules.setdefault(entry.module, ModuleTotals())
        module.agents += 1
        module.succeeded += entry.status == "success"
        module.usage += entry.usage
        totals.usage += entry.usage
        if entry.cost_usd is not None:
            module.cost_usd += entry.cost_usd
            totals.cost_usd += entry.cost_usd
    totals.cost_usd = round(totals.cost_usd, 8)
    _explain_upstream_skips(entries, records.upstream)
    return WorkflowResult(
        workflow=records.workflow,
        dag_id=records.dag_id,
        run_id=records.run_id,
        outcome=decide_outcome(entries.values(), records.allow_partial_completion),
        allow_partial_completion=records.allow_partial_completion,
        agents=entries,
        modules=modules,
        totals=totals,
        cost_budget=records.cost_budget,
        gates={gate: records.gate_states.get(gate) for gate in records.gates},
    )


__all__ = [
    "NOT_MISSED",
    "REASONS",
    "compile_result",
    "decide_outcome",
    "failed_agents",
    "gated_agents",
    "had_to_succeed",
    "missed",
    "reason_for",
]
