"""breaker operations of the redis store (see stores/breaker_api.py)."""

from __future__ import annotations


class RedisBreakerMixin:
    """Filled in by the breaker engine's work."""
