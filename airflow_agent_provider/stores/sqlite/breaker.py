"""breaker operations of the sqlite store (see stores/breaker_api.py)."""

from __future__ import annotations


class SQLiteBreakerMixin:
    """Filled in by the breaker engine's work."""
