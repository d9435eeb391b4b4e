"""Abstract store operations for the budget engine (see base.Store)."""

from __future__ import annotations

from abc import ABC


class BudgetStore(ABC):
    """Filled in by the budget engine's work; see stores/base.py."""
