"""
Sort model-call errors into transient (worth retrying) and permanent (fail now).

Why one classifier: three layers act on the same question -- the retry loop inside a call, the
circuit breaker, and Airflow's task retry policy -- and they must agree. A 400 caused by a bad prompt
fails identically on every retry and says nothing about the provider's health, so it must neither be
retried nor open a breaker; a 429 or a 529 goes away by waiting, and the provider often says for how
long (``retry-after``, ``retry-after-ms``, or its rate-limit reset headers), so that is honoured.

Works on the real SDK exceptions (``openai``/``anthropic`` ``APIStatusError`` and friends, whose
``response.headers`` carry the hints), on raw ``httpx`` transport errors, on built-in timeouts and
connection errors, on Airflow's task timeouts, and on the provider's own exceptions, which declare
their kind by their base class (``exceptions.PermanentError``: a budget that ran out;
``exceptions.TransientError``: a breaker that is open, with ``retry_after_s``). An exception nothing is
known about is *unclassified*: treated as permanent inside a call (retrying a bug helps nobody) while
the Airflow retry policy leaves it to the task's own ``retries``. Response headers are read by
``llm.provider_headers``, the parser the rate limiter uses too.

Errors that cross the triggerer boundary travel as a dict (``error_event``), classified again on the
worker side with ``classify_event``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from airflow_agent_provider.exceptions import (
    ClassifiedError as ClassifiedError,
    PermanentError,
    TransientError,
)
from airflow_agent_provider.llm.provider_headers import duration_seconds, parse_rate_limit_headers
from airflow_agent_provider.resilience._error_kinds import (
    CONNECTION_NAMES,
    CONTENT_POLICY_CODES,
    CONTEXT_CODES,
    CONTEXT_MESSAGE,
    ERROR_TYPES,
    MAX_MESSAGE_CHARS as MAX_MESSAGE_CHARS,
    PERMANENT as PERMANENT,
    PERMANENT_NAMES,
    QUOTA_CODES,
    REFINED_REASONS,
    STATUS_REASONS,
    TIMEOUT_NAMES,
    TRANSIENT as TRANSIENT,
    ErrorInfo as ErrorInfo,
    ErrorKind as ErrorKind,
)
from airflow_agent_provider.resilience._transports import (
    AIRFLOW_TIMEOUT_CLASS_NAMES,
    connection_classes,
    loaded_classes,
    timeout_classes,
)

ErrorInfo.__module__ = __name__  # defined in a private module, public here (reprs, pickles)

# ---------------------------------------------------------------------------------------------
# Retry-after hints (parsed by ``llm.provider_headers``, the one reader of provider headers)
# ---------------------------------------------------------------------------------------------

#: Seconds in an OpenAI reset header (``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``, ``1d``, a bare number).
parse_go_duration = duration_seconds


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return max(0.0, value)


def retry_after_from_headers(headers: Mapping[str, str] | None, *, rate_limited: bool = True) -> float | None:
    """
    Seconds to wait according to the response headers, or None when they do not say.

    The rules are ``llm.provider_headers``' (:meth:`RateLimitHints.retry_after_s`): for a rate-limited
    response the longest of ``retry-after`` and the exhausted tiers' resets (or the soonest reset if no
    tier is marked exhausted); otherwise only ``retry-after-ms``/``retry-after``.
    """
    return parse_rate_limit_headers(headers).retry_after_s(rate_limited=rate_limited)


# ---------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------


def _provider_of(exc: BaseException) -> str | None:
    root = type(exc).__module__.split(".", 1)[0]
    return root if root in ("openai", "anthropic") else None


def _message(exc: BaseException) -> str:
    return str(exc)[:MAX_MESSAGE_CHARS]


def _error_code(exc: BaseException) -> str | None:
    """The API's error code: ``code`` (OpenAI), ``error_code`` (Anthropic) or from the body."""
    for attr in ("code", "error_code"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value:
            return value
    body = getattr(exc, "body", None)
    err = body.get("error", body) if isinstance(body, Mapping) else None
    if not isinstance(err, Mapping):
        return None
    details = err.get("details")
    code = err.get("code") or (details.get("error_code") if isinstance(details, Mapping) else None)
    return code if isinstance(code, str) and code else None


def _error_type(exc: BaseException) -> str | None:
    value = getattr(exc, "type", None)
    if isinstance(value, str) and value:
        return value
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        value = body["error"].get("type")
        return value if isinstance(value, str) else None
    return None


def status_kind(status: int) -> tuple[ErrorKind, str]:
    """Kind and reason for an HTTP status alone."""
    if status in STATUS_REASONS:
        return STATUS_REASONS[status]
    if status >= 500:
        return TRANSIENT, "server_error"
    if 400 <= status < 500:
        return PERMANENT, "client_error"
    return TRANSIENT, "unexpected_status"


def _refine(
    kind: ErrorKind, reason: str, status: int | None, code: str | None, message: str
) -> tuple[ErrorKind, str]:
    """Codes that change the meaning of a status (quota vs. rate limit, context length vs. bad request)."""
    if code in QUOTA_CODES:
        return PERMANENT, "quota_exhausted"
    if code in CONTEXT_CODES or (status in (400, 413) and CONTEXT_MESSAGE.search(message)):
        return PERMANENT, "context_length_exceeded"
    if code in CONTENT_POLICY_CODES:
        return PERMANENT, "content_policy"
    return kind, reason


def _declared(exc: BaseException, provider: str | None, name: str, message: str) -> ErrorInfo | None:
    """The kind an exception of this provider declares by its base class (``exceptions.py``)."""
    if isinstance(exc, ClassifiedError):
        return exc.info
    if not isinstance(exc, (TransientError, PermanentError)):
        return None
    reason = exc.reason if isinstance(exc.reason, str) and exc.reason else None
    status = exc.status_code if isinstance(exc.status_code, int) else None
    if isinstance(exc, PermanentError):
        return ErrorInfo(PERMANENT, reason or "marked_permanent", status, None, provider, name, message)
    retry_after = exc.retry_after_s
    retry_after = _finite(float(retry_after)) if isinstance(retry_after, (int, float)) else None
    return ErrorInfo(TRANSIENT, reason or "marked_transient", status, retry_after, provider, name, message)


def _airflow_timeout(exc: BaseException, name: str, message: str) -> ErrorInfo | None:
    """
    Airflow's own task timeouts (``TaskDeferralTimeout``, ``AirflowTaskTimeout``): the try is over.

    Not a model error, so not retried inside the call (the task's own deadline has passed) and left
    unclassified, so the task's standard retries decide, as for any task. Airflow's exceptions carry a class-level ``status_code = 500`` (the API server's status for them);
    read as a provider response, a deferral timeout would be a "transient HTTP 500 server_error".
    """
    if not isinstance(exc, loaded_classes(AIRFLOW_TIMEOUT_CLASS_NAMES)):
        return None
    where = " while it was deferred to the triggerer" if name == "TaskDeferralTimeout" else ""
    text = f"the agent exceeded its execution_timeout{where}" + (f" ({message})" if message else "")
    return ErrorInfo(PERMANENT, "timeout", None, None, None, name, text[:MAX_MESSAGE_CHARS], classified=False)


def _is_airflow_exception(exc: BaseException) -> bool:
    return type(exc).__module__.split(".", 1)[0] == "airflow"


def _classify_one(exc: BaseException) -> ErrorInfo | None:
    provider = _provider_of(exc)
    name = type(exc).__name__
    message = _message(exc)
    info = _declared(exc, provider, name, message) or _airflow_timeout(exc, name, message)
    if info is not None:
        return info

    # An HTTP response: SDK status errors and httpx.HTTPStatusError.
    response = getattr(exc, "response", None)
    # Not for Airflow's own exceptions: their ``status_code`` is the API server's, not a provider's.
    status = None if _is_airflow_exception(exc) else getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = getattr(response, "status_code", None)
    if isinstance(status, int) and status >= 400:
        headers = getattr(response, "headers", None)
        kind, reason = status_kind(status)
        kind, reason = _refine(kind, reason, status, _error_code(exc), message)
        # The provider may say explicitly whether to retry (OpenAI's x-should-retry); a refined
        # reason (quota, context length, content policy) is about the request and stays permanent.
        should_retry = headers.get("x-should-retry") if headers is not None else None
        if reason not in REFINED_REASONS and should_retry in ("true", "false"):
            kind = TRANSIENT if should_retry == "true" else PERMANENT
        retry_after = (
            retry_after_from_headers(headers, rate_limited=status == 429) if kind == TRANSIENT else None
        )
        return ErrorInfo(kind, reason, status, retry_after, provider, name, message)

    if name in PERMANENT_NAMES and provider:
        return ErrorInfo(PERMANENT, PERMANENT_NAMES[name], None, None, provider, name, message)
    if isinstance(exc, timeout_classes()):
        return ErrorInfo(TRANSIENT, "timeout", None, None, provider, name, message)
    if isinstance(exc, connection_classes()):
        return ErrorInfo(TRANSIENT, "connection_error", None, None, provider, name, message)

    # An API error without a usable status (an error event inside a streamed 200 response).
    err_type = _error_type(exc) if provider else None
    if err_type in ERROR_TYPES:
        kind, reason = ERROR_TYPES[err_type]
        kind, reason = _refine(kind, reason, None, _error_code(exc), message)
        return ErrorInfo(
            kind, reason, status if isinstance(status, int) else None, None, provider, name, message
        )
    return None


def classify(exc: BaseException) -> ErrorInfo:
    """
    Classify ``exc``; follows ``raise ... from cause`` chains when the outer exception is unknown.

    Unknown exceptions come back as ``permanent`` with ``classified=False`` and reason ``unclassified``.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        info = _classify_one(current)
        if info is not None:
            return info
        current = current.__cause__
    return ErrorInfo(
        PERMANENT,
        "unclassified",
        None,
        None,
        _provider_of(exc),
        type(exc).__name__,
        _message(exc),
        classified=False,
    )


def is_transient(exc: BaseException) -> bool:
    return classify(exc).transient


# ---------------------------------------------------------------------------------------------
# Errors as trigger events
# ---------------------------------------------------------------------------------------------


def error_event(exc: BaseException, **extra: Any) -> dict[str, Any]:
    """
    The JSON-safe dict a trigger yields for a failed call (the exception itself cannot cross).

    ``extra`` is merged in (for example the request id), without overriding the error fields.
    The message is scrubbed (``security.redact``): an endpoint that echoed the API key or a
    credential header into its error body does not put it into the event, XCom or the result.
    """
    from airflow_agent_provider.security.redact import scrub

    info = classify(exc)
    event = dict(extra)
    event.update(
        status="error",
        error_type=info.error_type,
        status_code=info.status_code,
        message=scrub(info.message),
        retry_after_s=info.retry_after_s,
        kind=info.kind,
        reason=info.reason,
        provider=info.provider,
        classified=info.classified,
    )
    return event


def classify_event(event: Mapping[str, Any]) -> ErrorInfo:
    """
    Classify an error event (see ``error_event``); also accepts a minimal event with only
    ``error_type``/``status_code``/``message``/``retry_after_s`` as written by other triggers.
    """
    status = event.get("status_code")
    status = int(status) if isinstance(status, (int, float, str)) and str(status).isdigit() else None
    retry_after = event.get("retry_after_s")
    retry_after = _finite(float(retry_after)) if isinstance(retry_after, (int, float)) else None
    error_type = str(event.get("error_type") or "")
    message = str(event.get("message") or "")[:MAX_MESSAGE_CHARS]
    provider = event.get("provider")
    common: dict[str, Any] = {
        "status_code": status,
        "retry_after_s": retry_after,
        "provider": provider,
        "error_type": error_type,
        "message": message,
    }

    kind = event.get("kind")
    if kind in (TRANSIENT, PERMANENT):
        return ErrorInfo(
            kind=kind,
            reason=str(event.get("reason") or kind),
            classified=bool(event.get("classified", True)),
            **common,
        )
    if event.get("permanent") is True:
        return ErrorInfo(kind=PERMANENT, reason="marked_permanent", **common)
    if status is not None and status >= 400:
        kind, reason = _refine(*status_kind(status), status, event.get("code"), message)
        return ErrorInfo(kind=kind, reason=reason, **common)
    if error_type in TIMEOUT_NAMES:
        return ErrorInfo(kind=TRANSIENT, reason="timeout", **common)
    if error_type in CONNECTION_NAMES:
        return ErrorInfo(kind=TRANSIENT, reason="connection_error", **common)
    if error_type in PERMANENT_NAMES:
        return ErrorInfo(kind=PERMANENT, reason=PERMANENT_NAMES[error_type], **common)
    return ErrorInfo(kind=PERMANENT, reason="unclassified", classified=False, **common)
