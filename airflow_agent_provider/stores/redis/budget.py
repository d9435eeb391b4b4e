"""budget operations of the redis store (see stores/budget_api.py)."""

from __future__ import annotations


class RedisBudgetMixin:
    """Filled in by the budget engine's work."""
