"""
One parser for provider rate-limit headers: the limiter and the classifier read the same hints.

``limits.headers.pause_seconds`` (the limiter's shared pause) and ``resilience.classify``
(``retry_after_from_headers`` and ``classify`` on a real SDK error) must agree with
``llm.provider_headers`` on retry-after, resets and exhausted tiers for the same headers.
"""

from __future__ import annotations

import email.utils
import time

import pytest

from airflow_agent_provider.limits.headers import parse_duration, pause_seconds
from airflow_agent_provider.llm.provider_headers import duration_seconds, parse_rate_limit_headers
from airflow_agent_provider.resilience.classify import classify, parse_go_duration, retry_after_from_headers
from tests.resilience.sdk_calls import anthropic_client, call_anthropic, call_openai, openai_client, raised_by

ANCHOR = 1_800_000_000.0  # 2027-01-15T08:00:00Z, the "now" of the absolute times below

# (headers, exhausted tiers, pause for every user of the key, retry-after of a 429)
CASES = [
    pytest.param(
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1d2h3m4s"},
        {("openai", "requests")},
        93784.0,
        93784.0,
        id="openai-exhausted-1d2h3m4s",
    ),
    pytest.param(
        {
            "x-ratelimit-remaining-requests": "10",
            "x-ratelimit-reset-requests": "6m0s",
            "x-ratelimit-remaining-tokens": "0",
            "x-ratelimit-reset-tokens": "20ms",
        },
        {("openai", "tokens")},
        0.02,
        0.02,
        id="openai-exhausted-tokens-only",
    ),
    pytest.param(
        {"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "1.5"},
        set(),
        None,
        1.5,  # a 429 that marks no tier exhausted waits for the soonest reset
        id="openai-nothing-exhausted",
    ),
    pytest.param(
        {
            "anthropic-ratelimit-input-tokens-remaining": "0",
            "anthropic-ratelimit-input-tokens-reset": "2027-01-15T08:00:30Z",
            "anthropic-ratelimit-requests-remaining": "3",
            "anthropic-ratelimit-requests-reset": "2027-01-15T08:00:05Z",
        },
        {("anthropic", "input-tokens")},
        30.0,
        30.0,
        id="anthropic-rfc3339-resets",
    ),
    pytest.param(
        {
            "retry-after": "120",
            "anthropic-ratelimit-tokens-remaining": "0",
            "anthropic-ratelimit-tokens-reset": "30s",
        },
        {("anthropic", "tokens")},
        120.0,
        120.0,
        id="retry-after-longer-than-reset",
    ),
    pytest.param({"Retry-After": "7"}, set(), 7.0, 7.0, id="retry-after-seconds-any-case"),
    pytest.param({"retry-after-ms": "250", "retry-after": "9"}, set(), 0.25, 0.25, id="retry-after-ms-wins"),
    pytest.param({"retry-after": "0"}, set(), None, 0.0, id="retry-after-zero"),
    pytest.param({"content-type": "application/json"}, set(), None, None, id="no-hints"),
]


@pytest.mark.parametrize(("headers", "exhausted", "pause", "retry_after"), CASES)
def test_limiter_and_classifier_read_the_same_hints(headers, exhausted, pause, retry_after):
    hints = parse_rate_limit_headers(headers, now=ANCHOR)
    assert {(t.vendor, t.tier) for t in hints.exhausted} == exhausted
    assert hints.pause_s == pytest.approx(pause)
    assert pause_seconds(headers, now=ANCHOR) == pytest.approx(pause)
    assert hints.retry_after_s(rate_limited=True) == pytest.approx(retry_after)


# retry_after_from_headers reads the local clock: only the cases without absolute times compare exactly.
RELATIVE_CASES = [case for case in CASES if not any("T08:00" in value for value in case.values[0].values())]


@pytest.mark.parametrize(("headers", "exhausted", "pause", "retry_after"), RELATIVE_CASES)
def test_classifier_helper_uses_the_shared_rules(headers, exhausted, pause, retry_after):
    hints = parse_rate_limit_headers(headers)
    assert retry_after_from_headers(headers) == pytest.approx(hints.retry_after_s(rate_limited=True))
    assert retry_after_from_headers(headers, rate_limited=False) == pytest.approx(hints.explicit_s)


def test_retry_after_http_date_is_the_same_for_both():
    at = time.time() + 90
    headers = {"retry-after": email.utils.formatdate(at, usegmt=True)}
    assert pause_seconds(headers) == pytest.approx(90, abs=2)
    assert retry_after_from_headers(headers) == pytest.approx(90, abs=2)
    assert retry_after_from_headers(headers, rate_limited=False) == pytest.approx(90, abs=2)


def test_past_and_unreadable_values_are_not_guessed():
    past = {"retry-after": email.utils.formatdate(ANCHOR - 600, usegmt=True)}
    assert parse_rate_limit_headers(past, now=ANCHOR).explicit_s == 0.0
    assert pause_seconds(past, now=ANCHOR) is None
    junk = {"retry-after": "soon", "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "later"}
    assert pause_seconds(junk, now=ANCHOR) is None
    assert retry_after_from_headers(junk) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1d2h3m4s", 93784.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("1d", 86400.0),
        ("1.5", 1.5),
    ],
)
def test_one_duration_grammar(text, seconds):
    assert duration_seconds(text) == pytest.approx(seconds)
    assert parse_duration(text) == pytest.approx(seconds)  # the limiter's name for it
    assert parse_go_duration(text) == pytest.approx(seconds)  # the classifier's name for it


@pytest.mark.parametrize("call", ["openai", "anthropic"])
def test_a_real_rate_limit_error_is_classified_with_the_limiters_pause(llm, call):
    llm.configure(retry_after="120")
    if call == "openai":
        exc = raised_by(call_openai, openai_client(llm.openai_base_url), "hi [[fail:429]]")
    else:
        exc = raised_by(call_anthropic, anthropic_client(llm.anthropic_base_url), "hi [[fail:429]]")
    headers = exc.response.headers
    info = classify(exc)
    assert info.transient
    assert info.reason == "rate_limited"
    assert info.retry_after_s == pytest.approx(120)
    assert info.retry_after_s == pytest.approx(pause_seconds(headers))
    assert info.retry_after_s == pytest.approx(
        parse_rate_limit_headers(headers).retry_after_s(rate_limited=True)
    )
