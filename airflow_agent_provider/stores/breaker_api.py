"""Abstract store operations for the breaker engine (see base.Store)."""

from __future__ import annotations

from abc import ABC


class BreakerStore(ABC):
    """Filled in by the breaker engine's work; see stores/base.py."""
