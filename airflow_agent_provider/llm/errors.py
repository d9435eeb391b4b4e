"""Describe a failed model call in a JSON-safe, credential-free form.

A failure in the triggerer has to reach the worker inside a ``TriggerEvent``, and retry decisions
(resilience layer, Airflow ``retry_policy``) need the same facts whichever path the call took:
error type, HTTP status and Retry-After. Airflow-free.
"""

from __future__ import annotations

from typing import Any

from airflow_agent_provider.llm.adapter_common import header

_MAX_MESSAGE = 2000


class LLMCallError(Exception):
    """A model call failed; carries the SDK's error type, HTTP status and Retry-After when known."""

    def __init__(
        self,
        message: str,
        *,
        error_type: str = "LLMCallError",
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status_code = status_code
        self.retry_after = retry_after

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> LLMCallError:
        return cls(
            f"{event.get('error_type')}: {event.get('message')}",
            error_type=str(event.get("error_type") or "LLMCallError"),
            status_code=event.get("status_code"),
            retry_after=event.get("retry_after"),
        )


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = header(headers, "retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def describe_error(exc: BaseException) -> dict[str, Any]:
    """The ``status: error`` payload of a failed call (works for openai and anthropic exceptions)."""
    status = getattr(exc, "status_code", None)
    return {
        "status": "error",
        "error_type": type(exc).__name__,
        "message": str(exc)[:_MAX_MESSAGE],
        "status_code": int(status) if isinstance(status, int) else None,
        "retry_after": _retry_after(exc),
    }
