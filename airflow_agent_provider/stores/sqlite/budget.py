"""budget operations of the sqlite store (see stores/budget_api.py)."""

from __future__ import annotations


class SQLiteBudgetMixin:
    """Filled in by the budget engine's work."""
