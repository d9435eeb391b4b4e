"""
Where a model call can go: a plain value type, importable without the stores or the SDKs.

Every agent's guard configuration lists its fallback targets and is built when a DAG file is
parsed, so this module imports nothing but the standard library
(``resilience.fallback.FallbackTarget`` re-exports it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class FallbackTarget:
    """One place a call can go: a provider, a model and the Airflow connection that holds the key."""

    provider: str
    model: str
    llm_conn_id: str | None = None

    @property
    def key(self) -> str:
        """The breaker key of this target."""
        return f"{self.provider}/{self.model}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["FallbackTarget"]
