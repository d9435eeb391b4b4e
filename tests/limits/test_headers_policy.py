"""Header parsing and policy building: pure functions, no store."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_agent_provider.limits import RateLimitPolicy, parse_duration, parse_time, pause_seconds
from airflow_agent_provider.stores import Tier

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5", 0.5),
        ("17", 17.0),
        ("250us", 0.00025),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5x", "1s junk"])
def test_parse_duration_rejects(text):
    assert parse_duration(text) is None


def test_parse_time():
    assert parse_time("2026-03-01T12:00:30Z") == NOW + 30
    assert parse_time("2026-03-01T13:00:30+01:00") == NOW + 30
    assert parse_time("Sun, 01 Mar 2026 12:00:30 GMT") == NOW + 30
    assert parse_time("not a time") is None


def test_retry_after_seconds_and_date():
    assert pause_seconds({"retry-after": "1"}, now=NOW) == 1.0
    assert pause_seconds({"Retry-After": "Sun, 01 Mar 2026 12:00:07 GMT"}, now=NOW) == pytest.approx(7)
    assert pause_seconds({"retry-after-ms": "1500"}, now=NOW) == pytest.approx(1.5)
    assert pause_seconds({"retry-after": "Sun, 01 Mar 2026 11:00:00 GMT"}, now=NOW) is None  # past


def test_openai_headers():
    ok = {
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-tokens": "149984",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    assert pause_seconds(ok, now=NOW) is None
    assert pause_seconds({**ok, "x-ratelimit-remaining-requests": "0"}, now=NOW) == 1.0
    assert pause_seconds({**ok, "x-ratelimit-remaining-tokens": "0"}, now=NOW) == 360.0
    both = {
        **ok,
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-remaining-tokens": "0",
        "retry-after": "2",
    }
    assert pause_seconds(both, now=NOW) == 360.0  # the longest wins


def test_anthropic_headers():
    base = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2026-03-01T12:00:20Z",
        "anthropic-ratelimit-tokens-remaining": "5000",
        "anthropic-ratelimit-tokens-reset": "2026-03-01T12:00:50Z",
    }
    assert pause_seconds(base, now=NOW) == pytest.approx(20)
    tokens = {
        **base,
        "anthropic-ratelimit-requests-remaining": "10",
        "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": "2026-03-01T12:00:45Z",
    }
    assert pause_seconds(tokens, now=NOW) == pytest.approx(45)
    assert pause_seconds({}, now=NOW) is None


def test_policy_from_mapping_and_tiers():
    policy = RateLimitPolicy.from_mapping(
        {
            "requests_per_minute": 500,
            "requests_per_hour": 20000,
            "requests_per_day": 200000,
            "tokens_per_minute": 200000,
            "max_concurrent": 8,
        }
    )
    # every window is lengthened by the safety margin (default 2 s) for the grant-to-arrival delay
    assert policy.tiers() == [
        Tier("requests_per_minute", 500, 62.0),
        Tier("requests_per_hour", 20000, 3602.0),
        Tier("requests_per_day", 200000, 86402.0),
        Tier("tokens_per_minute", 200000, 62.0, "tokens"),
    ]
    exact = RateLimitPolicy.from_mapping({"requests_per_minute": 5, "window_margin_s": 0})
    assert exact.tiers() == [Tier("requests_per_minute", 5, 60.0)]
    assert exact.merge(policy).window_margin_s == 2.0  # the larger margin is the safer one
    assert policy.max_concurrent == 8
    assert policy.lease_ttl_s == 600.0
    assert RateLimitPolicy.from_mapping('{"requests_per_minute": 5, "lease_ttl_s": 30}') == RateLimitPolicy(
        requests_per_minute=5, lease_ttl_s=30.0
    )
    assert RateLimitPolicy.from_mapping(None).unlimited


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"request_per_minute": 5}, "unknown rate limit option"),
        ({"requests_per_minute": 0}, "positive integer"),
        ({"max_concurrent": "many"}, "positive integer"),
        ("{nope", "not valid JSON"),
        ([1], "must be a mapping"),
    ],
)
def test_policy_errors(data, message):
    with pytest.raises(ValueError, match=message):
        RateLimitPolicy.from_mapping(data)


def test_policy_merge_takes_the_stricter():
    definition = RateLimitPolicy(requests_per_minute=500, tokens_per_minute=200000)
    connection = RateLimitPolicy(requests_per_minute=60, max_concurrent=4, lease_ttl_s=120)
    merged = definition.merge(connection)
    assert merged == RateLimitPolicy(
        requests_per_minute=60, tokens_per_minute=200000, max_concurrent=4, lease_ttl_s=120
    )
    assert definition.merge(None) is definition
