"""limits operations of the redis store (see stores/limits_api.py)."""

from __future__ import annotations


class RedisLimitsMixin:
    """Filled in by the limits engine's work."""
