"""
Prices, the cost ledger and budgets that are never overshot (Airflow-free).

- ``pricing``: what a call costs (genai-prices, or a ``price:`` override; unknown is never $0);
- ``estimate``: the input-token estimate that sizes a reservation;
- ``budget``: ``BudgetGuard`` reserves a call's maximum cost in every scope before the call;
- ``ledger``: per-run cost summaries; ``check``: the budget check behind ``CostBudgetSensor``.

The names are imported on first use (PEP 562), not with the package: importing one submodule
(as a DAG file does through the operators) must not import every sibling and what they need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_agent_provider.cost.budget import (
        BudgetError,
        BudgetExceeded,
        BudgetGuard,
        BudgetLimits,
        CallScope,
        Reservation,
        UnpricedModelError,
    )
    from airflow_agent_provider.cost.estimate import (
        estimate_input_tokens,
    )
    from airflow_agent_provider.cost.ledger import (
        CostTotals,
        Ledger,
        RunCostSummary,
    )
    from airflow_agent_provider.cost.pricing import (
        CallCost,
        PriceOverride,
        max_call_cost,
        price_call,
    )

#: exported name -> the module that defines it, imported on first use
_EXPORTS: dict[str, str] = {
    "BudgetError": "airflow_agent_provider.cost.budget",
    "BudgetExceeded": "airflow_agent_provider.cost.budget",
    "BudgetGuard": "airflow_agent_provider.cost.budget",
    "BudgetLimits": "airflow_agent_provider.cost.budget",
    "CallScope": "airflow_agent_provider.cost.budget",
    "Reservation": "airflow_agent_provider.cost.budget",
    "UnpricedModelError": "airflow_agent_provider.cost.budget",
    "estimate_input_tokens": "airflow_agent_provider.cost.estimate",
    "CostTotals": "airflow_agent_provider.cost.ledger",
    "Ledger": "airflow_agent_provider.cost.ledger",
    "RunCostSummary": "airflow_agent_provider.cost.ledger",
    "CallCost": "airflow_agent_provider.cost.pricing",
    "PriceOverride": "airflow_agent_provider.cost.pricing",
    "max_call_cost": "airflow_agent_provider.cost.pricing",
    "price_call": "airflow_agent_provider.cost.pricing",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
