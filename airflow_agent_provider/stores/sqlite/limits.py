"""limits operations of the sqlite store (see stores/limits_api.py)."""

from __future__ import annotations


class SQLiteLimitsMixin:
    """Filled in by the limits engine's work."""
