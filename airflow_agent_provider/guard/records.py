"""
What a guarded call hands back: the result, and a paid response whose charge is not yet settled.

Both travel as JSON (trigger events, ``task_state_store``), so each has ``to_dict``/``from_dict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_agent_provider.cost.pricing import CallCost
from airflow_agent_provider.llm.types import LLMResponse
from airflow_agent_provider.resilience.fallback import FallbackTarget


@dataclass
class GuardedResult:
    """The response and what it took to get it."""

    response: LLMResponse
    target: FallbackTarget
    cost: CallCost
    #: Seconds spent waiting for rate-limit permits, all attempts together.
    wait_s: float = 0.0
    #: Requests sent (1 + retries), all targets together.
    requests: int = 0
    #: What happened per target: ``[{"target": {...}, "outcome": "ok" | "circuit_open" | ...}]``.
    attempts: list[dict[str, Any]] = field(default_factory=list)
    #: Whether the budget ledger charged this call (False only for a duplicate settlement).
    charged: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "response": self.response.to_dict(),
            "target": self.target.to_dict(),
            "cost": {"usd": self.cost.usd, "source": self.cost.source, "warning": self.cost.warning},
            "wait_s": self.wait_s,
            "requests": self.requests,
            "attempts": self.attempts,
            "charged": self.charged,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuardedResult:
        return cls(
            response=LLMResponse.from_dict(data["response"]),
            target=FallbackTarget(**data["target"]),
            cost=CallCost(**data["cost"]),
            wait_s=data.get("wait_s", 0.0),
            requests=data.get("requests", 0),
            attempts=list(data.get("attempts") or []),
            charged=data.get("charged", True),
        )


@dataclass
class PendingCharge:
    """
    A paid response whose settlement has not been confirmed: all it takes to settle it later.

    JSON round-trippable (it is persisted in ``task_state_store`` and carried in trigger events).
    ``result.charged`` means nothing until it is settled.
    """

    reservation_id: str
    result: GuardedResult
    #: When the call was reserved (epoch seconds, UTC): decides its day and month scopes.
    at: float
    #: The amount the reservation held (None: unpriced and unbudgeted).
    amount_usd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reservation_id": self.reservation_id,
            "result": self.result.to_dict(),
            "at": self.at,
            "amount_usd": self.amount_usd,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingCharge:
        return cls(
            reservation_id=data["reservation_id"],
            result=GuardedResult.from_dict(data["result"]),
            at=float(data["at"]),
            amount_usd=data.get("amount_usd"),
        )


__all__ = ["GuardedResult", "PendingCharge"]
