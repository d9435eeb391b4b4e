"""security.redact: secrets and credential patterns never survive scrubbing."""

from __future__ import annotations

import pytest

from airflow_agent_provider.security.redact import (
    MASK,
    forget_secrets,
    register_secret,
    registered_secrets,
    scrub,
    scrub_exception,
    scrub_headers,
    scrub_value,
)

KEY = "test-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def _clean_registry():
    forget_secrets()
    yield
    forget_secrets()


@pytest.mark.parametrize(
    "text",
    [
        # an SDK message built from an echoed body (Python dict repr)
        "Error code: 401 - {'error': {'message': 'no', 'headers': {'authorization': 'Bearer " + KEY + "'}}}",
        # JSON, any header case
        '{"headers": {"Authorization": "Bearer ' + KEY + '", "X-Api-Key": "' + KEY + '"}}',
        # raw header lines
        "Authorization: Bearer " + KEY + "\r\nx-api-key: " + KEY + "\r\n",
        # JSON escaped inside a JSON string
        '{\\"api-key\\": \\"' + KEY + '\\"}',
        # query parameter and URL password
        "GET https://gw.example/v1?api_key=" + KEY + "&a=1",
        "redis://user:" + KEY + "@localhost:6379/0",
        # a bare bearer token in prose
        "the gateway saw bearer " + KEY,
    ],
)
def test_patterns_remove_the_key_without_knowing_it(text):
    out = scrub(text)
    assert KEY not in out
    assert MASK in out


def test_vendor_key_shapes_are_removed():
    out = scrub("keys sk-proj-abcdefghijklmnop1234 and sk-ant-api03-abcdefghijklmnop")
    assert "abcdefghijklmnop" not in out
    assert out.count("sk-" + MASK) == 2


def test_given_and_registered_secrets_are_removed_anywhere():
    assert scrub(f"echo {KEY} back", [KEY]) == f"echo {MASK} back"
    register_secret(KEY)
    assert KEY in registered_secrets()
    assert scrub(f"plain {KEY} text") == f"plain {MASK} text"
    # URL-encoded form, and the start of the key at the end of a truncated message
    assert "%2F" not in scrub("x=abc%2Fdef%3D1", ["abc/def=1"])
    truncated = f"error: {KEY}"[:-6]
    assert scrub(truncated).endswith(MASK)
    assert KEY[:10] not in scrub(truncated)


def test_short_or_empty_secrets_do_not_mangle_text():
    register_secret("")
    register_secret(None)
    register_secret("k")
    assert registered_secrets() == frozenset()
    assert scrub("a kind key", ["k"]) == "a kind key"
    # ... but a short key in a credential position is still removed
    assert scrub("x-api-key: k") == f"x-api-key: {MASK}"


def test_ordinary_text_is_untouched_and_scrub_is_idempotent():
    text = "Error code: 429 - rate limited, retry after 2s; missing bearer token"
    assert scrub(text) == text
    once = scrub(f"Authorization: Bearer {KEY}")
    assert scrub(once) == once
    assert scrub(None) == ""
    assert scrub(42) == "42"


def test_scrub_value_and_headers():
    data = {"Authorization": "Bearer x", "nested": [{"message": f"key {KEY}"}], "n": 3, "ok": None}
    assert scrub_value(data, [KEY]) == {
        "Authorization": MASK,
        "nested": [{"message": f"key {MASK}"}],
        "n": 3,
        "ok": None,
    }
    assert scrub_headers({"x-api-key": KEY, "retry-after": "2"}) == [
        ("x-api-key", MASK),
        ("retry-after", "2"),
    ]


def test_scrub_exception_keeps_type_and_attributes():
    class VendorError(Exception):
        def __init__(self, message, *, status_code):
            super().__init__(message)
            self.message = message
            self.status_code = status_code
            self.body = {"headers": {"authorization": f"Bearer {KEY}"}}

    err = VendorError(f"401 echo {KEY}", status_code=401)
    err.add_note(f"note {KEY}")
    clean = scrub_exception(err, [KEY])
    assert type(clean) is VendorError
    assert clean is not err
    assert clean.status_code == 401
    assert KEY not in str(clean)
    assert KEY not in clean.message
    assert KEY not in repr(clean.body)
    assert KEY not in " ".join(clean.__notes__)
    # the original is untouched, and an exception without secrets is returned as is
    assert KEY in str(err)
    plain = ValueError("nothing secret")
    assert scrub_exception(plain, [KEY]) is plain


def test_scrub_exception_follows_the_cause_chain():
    try:
        try:
            raise ConnectionError(f"proxy said Authorization: Bearer {KEY}")
        except ConnectionError as inner:
            raise RuntimeError("call failed") from inner
    except RuntimeError as outer:
        clean = scrub_exception(outer)
    assert isinstance(clean.__cause__, ConnectionError)
    assert KEY not in str(clean.__cause__)
    assert clean.__traceback__ is not None


def test_os_errors_keep_their_fields():
    err = ConnectionRefusedError(111, f"refused by {KEY}")
    clean = scrub_exception(err, [KEY])
    assert isinstance(clean, ConnectionRefusedError)
    assert clean.errno == 111
    assert KEY not in str(clean)
