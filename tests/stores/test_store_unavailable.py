"""A Redis store that cannot be reached raises StoreUnavailable (transient) from every engine's calls."""

from __future__ import annotations

import socket

import pytest

from airflow_agent_provider.limits.policy import RateLimitPolicy
from airflow_agent_provider.resilience.classify import classify
from airflow_agent_provider.stores import StoreUnavailable, store_from_url
from airflow_agent_provider.stores.breaker_api import BreakerConfig


def _dead_redis_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


@pytest.mark.parametrize(
    "operation",
    [
        lambda s: s.acquire("k", RateLimitPolicy(requests_per_minute=1).tiers(), 0),
        lambda s: s.budget_reserve("r", [("run:d:r", 1.0)], 0.1, 60),
        lambda s: s.budget_spent("run:d:r"),
        lambda s: s.ledger_entries("d", "r"),
        lambda s: s.breaker_allow("openai/x", BreakerConfig()),
        lambda s: s.breaker_reset("openai/x"),
        lambda s: s.ping(),
    ],
    ids=["limits", "reserve", "spent", "ledger", "breaker", "breaker_reset", "ping"],
)
def test_unreachable_redis_is_store_unavailable_and_transient(operation):
    store = store_from_url(_dead_redis_url())
    with pytest.raises(StoreUnavailable) as err:
        operation(store)
    assert classify(err.value).transient
