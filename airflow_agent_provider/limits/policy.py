"""What a rate limit allows: the tiers of one key, from a definition or a connection's extras."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_agent_provider.stores.limits_api import Tier, Unit

_TIERS: tuple[tuple[str, float, Unit], ...] = (
    ("requests_per_minute", 60.0, "requests"),
    ("requests_per_hour", 3600.0, "requests"),
    ("requests_per_day", 86400.0, "requests"),
    ("tokens_per_minute", 60.0, "tokens"),
)


@dataclass(frozen=True)
class RateLimitPolicy:
    """
    Limits of one rate-limit key; ``None`` means "no limit of this kind".

    A provider enforces several limits at once (per minute, per day, tokens), so one acquisition
    must satisfy all of them; ``tiers()`` lists them for the store. ``lease_ttl_s`` bounds how long
    a concurrency slot stays taken when its holder dies without releasing it.

    ``window_margin_s`` lengthens every window: the limiter counts a request when its permit is
    granted, the provider when the request *arrives*, and the delay between the two varies (process
    scheduling, connection set-up, a loaded worker). Without a margin, requests granted late in one
    window and requests that arrived late from its start can meet in one window on the provider's
    side and exceed the limit there. The margin must exceed that variation; 2 s costs a per-minute
    limit about 3 % of its throughput.
    """

    requests_per_minute: int | None = None
    requests_per_hour: int | None = None
    requests_per_day: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None
    lease_ttl_s: float = 600.0
    window_margin_s: float = 2.0

    def __post_init__(self) -> None:
        for name in (
            "requests_per_minute",
            "requests_per_hour",
            "requests_per_day",
            "tokens_per_minute",
            "max_concurrent",
        ):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"rate limit {name} must be a positive integer, got {value!r}")
        if not self.lease_ttl_s > 0:
            raise ValueError(f"rate limit lease_ttl_s must be > 0, got {self.lease_ttl_s!r}")
        if not self.window_margin_s >= 0:
            raise ValueError(f"rate limit window_margin_s must be >= 0, got {self.window_margin_s!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | str | None) -> RateLimitPolicy:
        """
        Build from a definition's ``rate_limits`` entry or a connection's ``rate_limits`` extra.

        A JSON string is accepted because Airflow connection extras often hold one. Unknown keys are
        an error, so that a typo (``request_per_minute``) never silently means "unlimited".
        """
        if data is None or data == "":
            return cls()
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as err:
                raise ValueError(f"rate limits are not valid JSON: {err}") from None
        if not isinstance(data, Mapping):
            raise ValueError(f"rate limits must be a mapping, got {type(data).__name__}")
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown rate limit option(s) {unknown}; allowed: {sorted(allowed)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if value is None:
                continue
            if name in ("lease_ttl_s", "window_margin_s"):
                values[name] = float(value)
            elif isinstance(value, float) and value.is_integer():
                values[name] = int(value)
            elif isinstance(value, str) and value.strip().isdigit():
                values[name] = int(value)
            else:
                values[name] = value
        return cls(**values)

    def merge(self, other: RateLimitPolicy | None) -> RateLimitPolicy:
        """Both sets of limits apply (e.g. the definition's and the connection's): the stricter wins."""
        if other is None:
            return self
        merged: dict[str, Any] = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            stricter = max if f.name == "window_margin_s" else min
            merged[f.name] = b if a is None else a if b is None else stricter(a, b)
        return replace(self, **merged)

    def tiers(self) -> list[Tier]:
        # Imported here: policies are parsed at DAG parse time, the store API is needed for calls only.
        from airflow_agent_provider.stores.limits_api import Tier

        return [
            Tier(name, getattr(self, name), window + self.window_margin_s, unit)
            for name, window, unit in _TIERS
            if getattr(self, name) is not None
        ]

    @property
    def unlimited(self) -> bool:
        return not self.tiers() and self.max_concurrent is None
