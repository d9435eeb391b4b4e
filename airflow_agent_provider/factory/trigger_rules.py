"""
How partial completion becomes Airflow trigger rules.

Airflow trigger rules look at *all* upstream tasks at once, but a workflow distinguishes critical from
non-critical agents. The rule per agent is therefore chosen from its upstreams:

* partial completion off, or every upstream critical: ``all_success``. A failed upstream turns the
  agent into ``upstream_failed`` and the model is never called.
* partial completion on and at least one upstream non-critical: ``all_done``, so that a failed
  non-critical upstream does not stop the agent. The agent then receives the list of its critical
  upstreams and refuses (skips, without a model call) when one of them has no result; this is the
  part Airflow's rules cannot express.

The run's final state comes from the leaf tasks. The factory adds one leaf, the workflow result task
(``all_done``), which fails when the outcome is ``failed`` and succeeds for ``success`` and ``partial``.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_SUCCESS = "all_success"
ALL_DONE = "all_done"


@dataclass(frozen=True)
class AgentGate:
    """The trigger rule of one agent task and the upstreams it must check itself."""

    trigger_rule: str
    critical_upstreams: tuple[str, ...] = ()


def gate_for(
    upstream_ids: list[str], critical_by_id: dict[str, bool], allow_partial_completion: bool
) -> AgentGate:
    """Choose the trigger rule for an agent whose upstream agent task ids are ``upstream_ids``."""
    if not allow_partial_completion or all(critical_by_id[u] for u in upstream_ids):
        return AgentGate(ALL_SUCCESS)
    return AgentGate(ALL_DONE, tuple(u for u in upstream_ids if critical_by_id[u]))
