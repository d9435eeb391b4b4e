"""Prices, the cost ledger and budgets that are never overshot (Airflow-free).

- ``pricing``: what a call costs (genai-prices, or a ``price:`` override; unknown is never $0);
- ``estimate``: the input-token estimate that sizes a reservation;
- ``budget``: ``BudgetGuard`` reserves a call's maximum cost in every scope before the call;
- ``ledger``: per-run cost summaries; ``check``: the budget check behind ``CostBudgetSensor``.
"""

from __future__ import annotations

from airflow_agent_provider.cost.budget import (
    BudgetError,
    BudgetExceeded,
    BudgetGuard,
    BudgetLimits,
    CallScope,
    Reservation,
    UnpricedModelError,
)
from airflow_agent_provider.cost.estimate import estimate_input_tokens
from airflow_agent_provider.cost.ledger import CostTotals, Ledger, RunCostSummary
from airflow_agent_provider.cost.pricing import (
    CallCost,
    PriceOverride,
    max_call_cost,
    price_call,
)

__all__ = [
    "BudgetError",
    "BudgetExceeded",
    "BudgetGuard",
    "BudgetLimits",
    "CallCost",
    "CallScope",
    "CostTotals",
    "Ledger",
    "PriceOverride",
    "Reservation",
    "RunCostSummary",
    "UnpricedModelError",
    "estimate_input_tokens",
    "max_call_cost",
    "price_call",
]
