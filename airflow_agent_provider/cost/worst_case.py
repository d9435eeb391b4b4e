"""
The most one run of a workflow can cost, at real-time and at batch prices: what ``validate`` prints.

Why three figures: the bill payer deciding on ``delivery: batch`` wants to know what the workflow
costs as declared, what it would cost if every agent were a real-time call (the price of not using
batch, or of a batch agent whose retries fall back to real time), and what it would cost if every
agent that *can* be batched were (tools and ``repeat_until`` agents must stay real-time).

The bound per agent, from the definition alone (no run, no upstream results):

- calls: ``max_rounds`` for an agent with tools (one call per tool round), ``max_iterations`` for
  ``repeat_until``, else one; times the items of a static ``for_each`` list. A ``for_each``
  expression's length is only known at run time: it is counted as one item and reported;
- input tokens of one call: the UTF-8 bytes of the system prompt, the prompt template and the output
  schema (byte-level tokenizers never make more tokens than bytes, as ``guard.estimates`` relies on),
  plus every upstream agent's ``max_tokens`` (its whole answer may be inlined into the prompt), plus,
  in a tool loop, the earlier rounds' answers (``max_tokens`` each); tool results are not known and
  not counted;
- output tokens: ``max_tokens`` per call;
- price: the dearer of the agent's model and its fallback models, at real-time prices
  (``cost.pricing``) or batch prices (``cost.batch_pricing``: genai-prices' batch rate, else half);
- retries are not included: a task retry can repeat an agent's calls up to ``retries.attempts``
  more times, and a run's ``cost_budget`` is what caps that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_agent_provider.definitions.delivery import batch_refusals
from airflow_agent_provider.guard.estimates import PER_MESSAGE_OVERHEAD_TOKENS

if TYPE_CHECKING:
    from airflow_agent_provider.cost.pricing import PriceOverride
    from airflow_agent_provider.definitions.models import AgentSpec, Workflow


@dataclass
class WorstCase:
    """The most one run can cost in USD; agents without a known price are counted, not priced."""

    realtime_usd: float = 0.0
    declared_usd: float = 0.0
    all_batch_usd: float = 0.0
    agents: int = 0
    batch_agents: int = 0
    #: Agents that cannot be batched (tools, repeat_until): real-time in every figure.
    realtime_only_agents: int = 0
    #: Agents whose model (or a fallback's) has no known price: left out of the figures.
    unpriced_agents: list[str] = field(default_factory=list)
    #: Agents whose ``for_each`` is an expression: counted once, they cost this much per item.
    per_item_agents: list[str] = field(default_factory=list)

    @property
    def batch_saving(self) -> float:
        """Share of the real-time worst case the workflow saves as declared (0.5 = half price)."""
        return 1 - self.declared_usd / self.realtime_usd if self.realtime_usd > 0 else 0.0


def _calls(agent: AgentSpec) -> int:
    if agent.tools:
        return agent.max_rounds
    if agent.repeat_until is not None:
        return agent.max_iterations
    return 1


def _items(agent: AgentSpec) -> int:
    items = agent.static_for_each()
    return len(items) if items is not None else 1


def _base_input_tokens(workflow: Workflow, module: str, agent: AgentSpec) -> int:
    texts = [agent.system_prompt or "", agent.prompt]
    schema = agent.resolved_output_schema()
    if schema:
        texts.append(json.dumps(schema))
    upstream = 0
    for qualified in workflow.upstream_ids(workflow.agent_id(module, agent.name)):
        dependency = workflow.get_agent(qualified)
        upstream += dependency.max_tokens * _items(dependency)
    overhead = PER_MESSAGE_OVERHEAD_TOKENS * 2
    return sum(len(text.encode("utf-8")) for text in texts) + upstream + overhead


def _call_cost(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    override: PriceOverride | None,
    batch: bool,
) -> float | None:
    from airflow_agent_provider.cost.batch_pricing import max_batch_call_cost
    from airflow_agent_provider.cost.pricing import max_call_cost

    if batch:
        return max_batch_call_cost(provider, model, input_tokens, output_tokens, override)
    return max_call_cost(provider, model, input_tokens, output_tokens, override)


def _agent_cost(workflow: Workflow, module: str, agent: AgentSpec, *, batch: bool) -> float | None:
    """The agent's worst case for one run at real-time or batch prices; None when unpriced."""
    if agent.model is None:  # no model anywhere (defaults neither): nothing to price
        return None
    base = _base_input_tokens(workflow, module, agent)
    targets: list[tuple[str, str, PriceOverride | None]] = [(agent.provider, agent.model, agent.price)]
    targets += [(fallback.provider, fallback.model, None) for fallback in agent.fallbacks]
    worst = 0.0
    for provider, model, override in targets:
        total = 0.0
        for round_ in range(_calls(agent)):
            # Round n re-sends the conversation: the earlier rounds' answers are input too.
            usd = _call_cost(
                provider, model, base + round_ * agent.max_tokens, agent.max_tokens, override, batch
            )
            if usd is None:
                return None
            total += usd
        worst = max(worst, total)
    return worst * _items(agent)


def worst_case(workflow: Workflow) -> WorstCase:
    """The three worst-case figures of ``workflow`` (see the module docstring for the bound)."""
    result = WorstCase()
    for module, agent in workflow.iter_agents():
        qualified = workflow.agent_id(module, agent.name)
        result.agents += 1
        declared_batch = agent.delivery == "batch"
        # The definitions' own rule (tools, repeat_until stay real-time), asked as if it were batch.
        batchable = not batch_refusals(agent.model_copy(update={"delivery": "batch"}))
        result.batch_agents += declared_batch
        result.realtime_only_agents += not batchable
        if agent.for_each is not None and agent.static_for_each() is None:
            result.per_item_agents.append(qualified)
        realtime = _agent_cost(workflow, module, agent, batch=False)
        batch = _agent_cost(workflow, module, agent, batch=True) if batchable else realtime
        if realtime is None or batch is None:
            result.unpriced_agents.append(qualified)
            continue
        result.realtime_usd += realtime
        result.declared_usd += batch if declared_batch else realtime
        result.all_batch_usd += batch
    return result


def describe(case: WorstCase, cost_budget: float | None = None) -> list[str]:
    """The lines ``validate`` prints under a valid workflow."""
    batchable = case.agents - case.realtime_only_agents
    saving = f", {case.batch_saving:.0%} less" if case.batch_agents and case.realtime_usd > 0 else ""
    lines = [
        f"     worst case per run (USD): realtime {case.realtime_usd:.4f}"
        f" | as declared {case.declared_usd:.4f} ({case.batch_agents} of {case.agents} agents batch{saving})"
        f" | batch where possible {case.all_batch_usd:.4f} ({batchable} of {case.agents} agents)"
    ]
    if cost_budget is not None:
        lines.append(f"     cost_budget caps a run at {cost_budget:.4f} USD (retries included)")
    if case.per_item_agents:
        lines.append(
            f"     per for_each item (counted once, the item count is known at run time): "
            f"{', '.join(case.per_item_agents)}"
        )
    if case.unpriced_agents:
        lines.append(
            f"     not priced (no genai-prices entry or price: override): {', '.join(case.unpriced_agents)}"
        )
    return lines


__all__ = ["WorstCase", "describe", "worst_case"]
