"""A policy with a sub-second/short request or token window, so that real-clock tests stay short."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_agent_provider.limits import RateLimitPolicy
from airflow_agent_provider.stores import Tier


@dataclass(frozen=True)
class ShortPolicy(RateLimitPolicy):
    """``RateLimitPolicy`` plus one extra tier of any window length (the real ones are minutes+)."""

    short: Tier | None = None

    def tiers(self) -> list[Tier]:
        return [*([self.short] if self.short else []), *super().tiers()]


def short_policy(limit: int, window_s: float, unit: str = "requests", **kw) -> ShortPolicy:
    return ShortPolicy(short=Tier("short", limit, window_s, unit), **kw)  # type: ignore[arg-type]
