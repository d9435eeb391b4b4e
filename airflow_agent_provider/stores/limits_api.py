"""Abstract store operations for the limits engine (see base.Store)."""

from __future__ import annotations

from abc import ABC


class RateLimitStore(ABC):
    """Filled in by the limits engine's work; see stores/base.py."""
