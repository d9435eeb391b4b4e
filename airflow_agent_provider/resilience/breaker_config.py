"""
How sensitive a circuit breaker is: a plain value type, importable without the stores or the SDKs.

Every agent's guard configuration holds one, and it is built when a DAG file is parsed, so this
module imports nothing but the standard library. The stores' breaker API and the breaker engine
use this same class (``stores.breaker_api.BreakerConfig`` re-exports it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BreakerConfig:
    """How sensitive a breaker is. Every caller of one key should use the same values."""

    #: Failures within ``window_s`` that open the breaker.
    failure_threshold: int = 5
    #: Sliding window, in seconds, over which failures are counted.
    window_s: float = 60.0
    #: How long the breaker stays open before it lets trial calls through.
    reset_timeout_s: float = 30.0
    #: Trial calls admitted at once while half-open.
    half_open_max_calls: int = 1
    #: A trial not reported within this time no longer holds its half-open slot.
    trial_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.half_open_max_calls < 1:
            raise ValueError("half_open_max_calls must be at least 1")
        for name in ("window_s", "reset_timeout_s", "trial_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


__all__ = ["BreakerConfig"]
