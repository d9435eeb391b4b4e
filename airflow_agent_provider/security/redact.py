"""
Keep API keys and credential headers out of every text that leaves the provider.

Why: an endpoint between the provider and the vendor (a gateway, a proxy, a misconfigured local
server) may echo the request's ``Authorization`` or ``x-api-key`` header in its error body. The SDKs
put that body into the exception message, and from there it would reach the task log, the
``agent_error`` XCom, trigger events, the run result, ``test_connection()`` and the CLI. Airflow's
secrets masker covers the log only; XCom, events and return values are plain data. So every
error text is scrubbed here before it leaves:

* the secrets given by the caller and every secret registered in this process
  (:func:`register_secret`; the LLM hook registers its connection's key), also URL-encoded and
  when cut off at the end of a truncated message;
* credential patterns whatever the secret: ``Bearer <token>``, ``Basic <token>``, ``sk-...`` keys,
  the value of ``Authorization`` / ``Proxy-Authorization`` / ``x-api-key`` / ``api-key`` /
  ``api_key`` / ``access_token`` written as a header line, a JSON or Python mapping entry or a
  query parameter, and the password of a ``scheme://user:password@host`` URL.

:func:`scrub` works on text, :func:`scrub_value` on JSON-like data (events, results),
:func:`scrub_exception` on an exception (a copy of the same type whose message, body, response
and notes carry no secret, while the status code, the response's ``retry-after`` and rate-limit
headers and the error code that the classifier reads stay intact).

Standard library only: operators, triggers, the CLI and the plugin all import this module.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

__all__ = [
    "MASK",
    "SENSITIVE_HEADERS",
    "forget_secrets",
    "register_secret",
    "registered_secrets",
    "scrub",
    "scrub_exception",
    "scrub_headers",
    "scrub_value",
]

#: What a removed secret is replaced with (the same marker as Airflow's secrets masker).
MASK = "***"

#: Literal secrets shorter than this are not replaced as literals: a one-letter "key" would mangle
#: every word. The header and bearer patterns still remove them where they appear as credentials.
MIN_SECRET_CHARS = 4

#: The shortest prefix of a secret that is masked at the very end of a (truncated) text.
_MIN_TAIL_CHARS = 4

#: Most secrets remembered per process (a process handles a handful of connections).
_MAX_REGISTERED = 1000

#: Header (and mapping key) names whose value is a credential, lower-case.
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "api_key",
        "apikey",
        "x-goog-api-key",
        "access_token",
        "cookie",
        "set-cookie",
    }
)

_NAMES = r"(?:proxy-)?authorization|x-api-key|x-goog-api-key|api[-_]?key|access[-_]token"

# name: "value" / 'name': 'value' / "name"="value" / name=\"value\" (an escaped JSON string)
_QUOTED = re.compile(
    rf"(?i)(?<![\w-])(?P<name>{_NAMES})(?P<q1>\\?[\"'])?(?P<sep>\s*[:=]\s*)(?P<q>\\?[\"'])(?P<val>.*?)(?P=q)"
)
# name: Bearer value / name=value (header lines, query strings)
_BARE = re.compile(
    rf"(?i)(?<![\w-])(?P<name>{_NAMES})(?P<sep>\s*[:=]\s*)(?!\\?[\"'])"
    r"(?:(?P<scheme>bearer|basic|token|digest)\s+)?(?P<val>[^\s\"'\\,;&}\])]+)"
)
_SCHEME_TOKEN = re.compile(r"(?i)\b(?P<scheme>bearer|basic)\s+(?P<val>[A-Za-z0-9\-._~+/]{8,}=*)")
_SK_KEY = re.compile(r"(?<![\w-])sk-[A-Za-z0-9_\-]{8,}")
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@\"']*:)(?P<val>[^\s@/\"']+)(?P<at>@)"
)

_lock = threading.Lock()
_registered: frozenset[str] = frozenset()


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` for every later :func:`scrub` in this process (empty and short values are ignored)."""
    global _registered
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS or secret in _registered:
        return
    with _lock:
        current = _registered if len(_registered) < _MAX_REGISTERED else frozenset()
        _registered = current | {secret}


def registered_secrets() -> frozenset[str]:
    """The secrets registered in this process."""
    return _registered


def forget_secrets() -> None:
    """Forget every registered secret (tests)."""
    global _registered
    with _lock:
        _registered = frozenset()


def _literals(secrets: Iterable[str | None]) -> list[str]:
    values = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_CHARS}
    values |= _registered
    # Longest first, so a secret that contains another is removed whole.
    return sorted(values, key=len, reverse=True)


def _mask_group(match: re.Match[str], group: str = "val") -> str:
    start, end = match.span(group)
    whole_start = match.start()
    text = match.group(0)
    return text[: start - whole_start] + MASK + text[end - whole_start :]


def _mask_bare(match: re.Match[str]) -> str:
    return _mask_group(match)


def scrub(text: Any, secrets: Iterable[str | None] = ()) -> str:
    """
    ``text`` without the given secrets, the registered ones and any credential pattern.

    Non-string input is converted with ``str`` first, so ``scrub(exc)`` works too. Idempotent:
    scrubbing scrubbed text changes nothing.
    """
    if text is None:
        return ""
    out = text if isinstance(text, str) else str(text)
    if not out:
        return out
    literals = _literals(secrets)
    for secret in literals:
        if secret in out:
            out = out.replace(secret, MASK)
        encoded = quote(secret, safe="")
        if encoded != secret and encoded in out:
            out = out.replace(encoded, MASK)
    out = _QUOTED.sub(_mask_group, out)
    out = _BARE.sub(_mask_bare, out)
    out = _SCHEME_TOKEN.sub(_mask_group, out)
    out = _SK_KEY.sub("sk-" + MASK, out)
    out = _URL_PASSWORD.sub(_mask_group, out)
    # A message truncated to a length limit may end inside a secret: mask what is left of it.
    for secret in literals:
        for size in range(len(secret) - 1, _MIN_TAIL_CHARS - 1, -1):
            if out.endswith(secret[:size]):
                out = out[:-size] + MASK
                break
    return out


def scrub_headers(headers: Any, secrets: Iterable[str | None] = ()) -> list[tuple[str, str]]:
    """Header pairs with credential headers masked and every other value scrubbed."""
    if not headers:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    secrets = tuple(secrets)
    pairs = []
    for raw_name, raw_value in items:
        name = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else str(raw_name)
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else str(raw_value)
        pairs.append((name, MASK if name.lower() in SENSITIVE_HEADERS else scrub(value, secrets)))
    return pairs


def scrub_value(value: Any, secrets: Iterable[str | None] = (), *, _depth: int = 0) -> Any:
    """
    JSON-like data (dicts, lists, strings) with every string scrubbed; a mapping entry whose key is
    a credential header name (``authorization``, ``x-api-key``, ...) is masked whole.
    Other values (numbers, None, booleans) are returned as they are.
    """
    secrets = tuple(secrets)
    if isinstance(value, str):
        return scrub(value, secrets)
    if _depth > 50:
        return MASK
    if isinstance(value, Mapping):
        return {
            key: (
                MASK
                if isinstance(key, str) and key.lower() in SENSITIVE_HEADERS and item
                else scrub_value(item, secrets, _depth=_depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [scrub_value(item, secrets, _depth=_depth + 1) for item in value]
    if isinstance(value, tuple):
        return tuple(scrub_value(item, secrets, _depth=_depth + 1) for item in value)
    return value


# -- exceptions -----------------------------------------------------------------------------------


def _clean_request(request: Any, secrets: tuple[str, ...]) -> Any:
    """An httpx request with credential headers masked and no body (the prompt stays out of errors)."""
    try:
        return type(request)(
            request.method, scrub(str(request.url), secrets), headers=scrub_headers(request.headers, secrets)
        )
    except Exception:  # an unfamiliar request type: drop it rather than keep the key
        return None


def _clean_response(response: Any, secrets: tuple[str, ...], request: Any) -> Any:
    """An httpx response with the same status, scrubbed headers and a scrubbed body."""
    try:
        content = response.content
    except Exception:  # not read (a stream): nothing to keep
        content = b""
    text = (
        content.decode("utf-8", errors="replace") if isinstance(content, (bytes, bytearray)) else str(content)
    )
    kwargs: dict[str, Any] = {
        "status_code": response.status_code,
        "headers": scrub_headers(response.headers, secrets),
        "content": scrub(text, secrets).encode("utf-8"),
    }
    if request is not None:
        kwargs["request"] = request
    try:
        return type(response)(**kwargs)
    except Exception:
        return None


def _looks_like_request(value: Any) -> bool:
    return hasattr(value, "method") and hasattr(value, "url") and hasattr(value, "headers")


def _looks_like_response(value: Any) -> bool:
    return hasattr(value, "status_code") and hasattr(value, "headers") and hasattr(value, "content")


class _ScrubbedError(Exception):
    """Stands in for an exception whose type cannot be rebuilt; keeps what the classifier reads."""


def scrub_exception(
    exc: BaseException, secrets: Iterable[str | None] = (), *, _seen: set[int] | None = None
) -> BaseException:
    """
    ``exc`` when no text of it carries a secret, else a copy of the same type that carries none.

    Scrubbed: ``args`` (so ``str(exc)``), every string or JSON-like attribute (``message``, ``body``),
    ``__notes__``, the chained ``__cause__``/``__context__``, and an attached httpx ``request``
    (credential headers masked, body dropped) and ``response`` (headers and body scrubbed, status
    kept). Kept: the type (and so its module, which names the SDK), ``status_code``, the error
    code/type, the response's ``retry-after`` and rate-limit headers, and the traceback.
    Raise the copy ``from`` its own ``__cause__`` so that the original is not chained as context.
    """
    texts = tuple(s for s in secrets if isinstance(s, str))
    seen = _seen if _seen is not None else set()
    if id(exc) in seen:
        return exc
    seen.add(id(exc))

    changed = False
    args = tuple(scrub_value(a, texts) for a in exc.args)
    changed |= args != exc.args
    attrs: dict[str, Any] = {}
    request = getattr(exc, "request", None) if "request" in getattr(exc, "__dict__", {}) else None
    clean_request = _clean_request(request, texts) if _looks_like_request(request) else None
    for name, value in getattr(exc, "__dict__", {}).items():
        new: Any
        if name == "__notes__" and isinstance(value, list):
            new = [scrub(n, texts) for n in value]
        elif name == "request" and _looks_like_request(value):
            new, changed = clean_request, True
        elif name == "response" and _looks_like_response(value):
            new, changed = _clean_response(value, texts, clean_request), True
        elif isinstance(value, (str, Mapping, list, tuple)):
            new = scrub_value(value, texts)
        else:
            new = value
        if new is not value and new != value:
            changed = True
        attrs[name] = new

    cause = exc.__cause__
    clean_cause = scrub_exception(cause, texts, _seen=seen) if cause is not None else None
    changed |= clean_cause is not cause
    context = exc.__context__
    clean_context = None
    if context is not None and context is not cause and not exc.__suppress_context__:
        clean_context = scrub_exception(context, texts, _seen=seen)
        changed |= clean_context is not context
    elif context is cause:
        clean_context = clean_cause
    if not changed:
        return exc

    try:
        copy = type(exc).__new__(type(exc), *args)
        copy.args = args
        copy.__dict__.update(attrs)
    except Exception:
        copy = _ScrubbedError(scrub(f"{type(exc).__name__}: {exc}", texts))
        for name in ("status_code", "retry_after_s", "reason", "transient", "permanent"):
            if name in attrs:
                setattr(copy, name, attrs[name])
    copy.__cause__ = clean_cause
    copy.__context__ = clean_context
    copy.__suppress_context__ = exc.__suppress_context__ or clean_context is None
    copy.__traceback__ = exc.__traceback__
    return copy
