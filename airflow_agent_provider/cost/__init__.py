"""
Prices, the cost ledger and budgets that are never overshot (Airflow-free).

- ``pricing``: what a call costs (genai-prices, or a ``price:`` override; unknown is never $0);
- ``estimate``: the input-token estimate that sizes a reservation;
- ``budget``: ``BudgetGuard`` reserves a call's maximum cost in every scope before the call;
- ``ledger``: per-run cost summaries; ``check``: the budget check behind ``CostBudgetSensor``.

The names are imported on first use (PEP 562), not with the package: importing one submodule
(as a DAG file does through the operators) must not import every sibling and what they need.
The ``TYPE_CHECKING`` imports below are the one list of the public names (``_lazy.attach``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_agent_provider import _lazy

if TYPE_CHECKING:
    from airflow_agent_provider.cost.budget import (
        BudgetError as BudgetError,
        BudgetExceeded as BudgetExceeded,
        BudgetGuard as BudgetGuard,
        BudgetLimits as BudgetLimits,
        CallScope as CallScope,
        Reservation as Reservation,
        UnpricedModelError as UnpricedModelError,
    )
    from airflow_agent_provider.cost.estimate import (
        estimate_input_tokens as estimate_input_tokens,
    )
    from airflow_agent_provider.cost.ledger import (
        CostTotals as CostTotals,
        Ledger as Ledger,
        RunCostSummary as RunCostSummary,
    )
    from airflow_agent_provider.cost.pricing import (
        CallCost as CallCost,
        PriceOverride as PriceOverride,
        max_call_cost as max_call_cost,
        price_call as price_call,
    )

__getattr__, __dir__, __all__ = _lazy.attach(__name__, __file__)
