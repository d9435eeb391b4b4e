"""
The classifier's vocabulary: error kinds and reasons, the status and error-type tables, ``ErrorInfo``.

Data only, so that the tables can be read (and extended) without the classification logic around them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ErrorKind = Literal["transient", "permanent"]

TRANSIENT: ErrorKind = "transient"
PERMANENT: ErrorKind = "permanent"

#: Longest message kept in an ``ErrorInfo``/error event (provider messages can echo whole prompts).
MAX_MESSAGE_CHARS = 500

STATUS_REASONS: dict[int, tuple[ErrorKind, str]] = {
    400: (PERMANENT, "bad_request"),
    401: (PERMANENT, "authentication"),
    402: (PERMANENT, "payment_required"),
    403: (PERMANENT, "permission_denied"),
    404: (PERMANENT, "not_found"),
    408: (TRANSIENT, "request_timeout"),
    409: (TRANSIENT, "conflict"),
    413: (PERMANENT, "request_too_large"),
    422: (PERMANENT, "unprocessable"),
    425: (TRANSIENT, "too_early"),
    429: (TRANSIENT, "rate_limited"),
    529: (TRANSIENT, "overloaded"),
}

# Error codes/types that refine a status: a 429 for an exhausted quota does not pass by waiting.
QUOTA_CODES = {"insufficient_quota", "contract_spend_limit_reached", "enforced_spend_limit_reached"}
CONTEXT_CODES = {"context_length_exceeded", "string_above_max_length"}
CONTENT_POLICY_CODES = {"content_policy_violation", "content_filter", "invalid_prompt"}
REFINED_REASONS = {"quota_exhausted", "context_length_exceeded", "content_policy"}
CONTEXT_MESSAGE = re.compile(
    r"context length|context window|prompt is too long|too many tokens", re.IGNORECASE
)

# Error ``type`` strings in the two APIs' error bodies, for errors without a usable HTTP status
# (an error event inside a 200 streaming response).
ERROR_TYPES: dict[str, tuple[ErrorKind, str]] = {
    "overloaded_error": (TRANSIENT, "overloaded"),
    "rate_limit_error": (TRANSIENT, "rate_limited"),
    "api_error": (TRANSIENT, "server_error"),
    "server_error": (TRANSIENT, "server_error"),
    "timeout_error": (TRANSIENT, "timeout"),
    "invalid_request_error": (PERMANENT, "bad_request"),
    "authentication_error": (PERMANENT, "authentication"),
    "permission_error": (PERMANENT, "permission_denied"),
    "not_found_error": (PERMANENT, "not_found"),
    "request_too_large": (PERMANENT, "request_too_large"),
}

# Exception class names, for errors that arrive as an event dict (no class to test).
TIMEOUT_NAMES = {
    "APITimeoutError",
    "TimeoutError",
    "TimeoutException",
    "ReadTimeout",
    "ConnectTimeout",
    "WriteTimeout",
    "PoolTimeout",
}
CONNECTION_NAMES = {
    "APIConnectionError",
    "ConnectError",
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "RemoteProtocolError",
    "ReadError",
    "WriteError",
    "TransportError",
    "NetworkError",
    "CircuitOpenError",
}
PERMANENT_NAMES = {
    "LengthFinishReasonError": "output_length_exceeded",
    "ContentFilterFinishReasonError": "content_policy",
}


@dataclass(frozen=True)
class ErrorInfo:
    """What is known about one failed call."""

    kind: ErrorKind
    #: Short machine-readable cause: ``rate_limited``, ``overloaded``, ``server_error``, ``timeout``,
    #: ``connection_error``, ``bad_request``, ``context_length_exceeded``, ``authentication`` ...
    reason: str
    status_code: int | None = None
    #: Seconds the provider asked us to wait, if it said.
    retry_after_s: float | None = None
    #: ``openai``/``anthropic`` when the error came from that SDK.
    provider: str | None = None
    #: Name of the exception class (kept because events carry no class).
    error_type: str = ""
    message: str = ""
    #: False when nothing was known about the exception (then ``kind`` is ``permanent``).
    classified: bool = True

    @property
    def transient(self) -> bool:
        return self.kind == TRANSIENT

    @property
    def permanent(self) -> bool:
        return self.kind == PERMANENT
