"""
Retries inside one model call, honouring what the provider says.

There are exactly two retry layers, and they must not multiply:

1. **Inside the call** (this module): a transient error (429, 5xx, 529 overloaded, a timeout, a
   dropped connection) is retried a few times within the same task try, after
   ``max(exponential backoff with jitter, the provider's retry-after)``, capped by ``max_delay_s``.
   This is cheap -- the worker slot is already held and the agent's state is in memory. The SDKs' own
   retries are switched off (``max_retries=0`` in the hook), otherwise every attempt here would be
   several HTTP requests with delays nobody chose.
2. **Around the task** (``operators/retry_policy.AgentRetryPolicy``): when the call gives up, Airflow's
   task retry takes over, with a delay again taken from the provider, and a permanent error fails the
   task at once instead of burning its retries.

The hand-over between the layers is deliberate: if the provider asks for a wait longer than
``max_delay_s`` (a quota that resets in ten minutes), sleeping in a worker slot would waste it, so the
call gives up at once with the original transient error and the task retry waits instead. Permanent
errors are raised at once. When attempts run out, the *original* exception is raised (never tenacity's
``RetryError``) so the outer layer can classify it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from airflow_agent_provider.resilience.classify import ErrorInfo, classify, parse_go_duration

log = logging.getLogger(__name__)

T = TypeVar("T")


def to_seconds(value: Any, *, name: str = "duration") -> float:
    """A delay given as seconds, a ``timedelta`` or a string like ``30s``/``5m``/``1h30m``."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (parsed := parse_go_duration(value)) is not None:
        seconds = parsed
    else:
        raise ValueError(f"{name}: expected seconds, a timedelta or a string like '30s', got {value!r}")
    if seconds < 0:
        raise ValueError(f"{name}: must not be negative, got {value!r}")
    return seconds


def compute_backoff(
    failures: int,
    *,
    base_delay_s: float,
    max_delay_s: float,
    exponential: bool = True,
    jitter: bool = True,
    rng: random.Random | None = None,
) -> float:
    """
    Delay after the ``failures``-th failure (1-based): ``base * 2**(failures-1)`` (or ``base``), capped
    at ``max_delay_s``; with jitter, a uniform draw from the upper half of that, so that workers that
    failed together do not come back together while the delay still grows.
    """
    delay = base_delay_s * (2.0 ** max(0, failures - 1)) if exponential else base_delay_s
    delay = min(delay, max_delay_s)
    if jitter:
        delay = (rng or random).uniform(delay / 2.0, delay)
    return delay


#: Names a workflow definition uses for the delays of ``CallRetryPolicy``.
_ALIASES = {"base_delay": "base_delay_s", "max_delay": "max_delay_s"}


@dataclass(frozen=True)
class CallRetryPolicy:
    """How a single model call is retried (the inner layer; see the module docstring)."""

    #: Attempts in total, the first included (1 = no retry).
    max_attempts: int = 3
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    exponential: bool = True
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("delays must not be negative")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> CallRetryPolicy:
        """
        Build from a mapping (a connection's extra, a definition block). Delays may be seconds, a
        ``timedelta`` or ``"30s"``; ``base_delay``/``max_delay`` are accepted for the ``_s`` names.
        Unknown keys are rejected so that a typo does not silently mean "defaults".
        """
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in (data or {}).items():
            name = _ALIASES.get(key, key)
            if name not in known:
                raise ValueError(f"unknown call retry setting {key!r}; expected one of {sorted(known)}")
            if name.endswith("_s"):
                kwargs[name] = to_seconds(value, name=key)
                continue
            if name == "max_attempts":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"max_attempts: expected an integer, got {value!r}")
            elif not isinstance(value, bool):
                raise ValueError(f"{key}: expected true or false, got {value!r}")
            kwargs[name] = value
        return cls(**kwargs)

    def backoff(self, failures: int) -> float:
        return compute_backoff(
            failures,
            base_delay_s=self.base_delay_s,
            max_delay_s=self.max_delay_s,
            exponential=self.exponential,
            jitter=self.jitter,
        )


@dataclass(frozen=True)
class RetryEvent:
    """Handed to ``on_retry`` before each sleep (for logs, metrics, the task's state store)."""

    attempt: int
    exception: BaseException
    info: ErrorInfo
    delay_s: float


def _should_retry(policy: CallRetryPolicy) -> Callable[[BaseException], bool]:
    def predicate(exc: BaseException) -> bool:
        info = classify(exc)
        if not info.transient:
            return False
        if info.retry_after_s is not None and info.retry_after_s > policy.max_delay_s:
            log.info(
                "Not retrying inside the call: the provider asks to wait %.1fs, more than max_delay %.1fs; "
                "leaving it to the task retry",
                info.retry_after_s,
                policy.max_delay_s,
            )
            return False
        return True

    return predicate


def _wait(policy: CallRetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = classify(exc).retry_after_s if exc is not None else None
        return min(max(policy.backoff(state.attempt_number), retry_after or 0.0), policy.max_delay_s)

    return wait


def _before_sleep(on_retry: Callable[[RetryEvent], None] | None) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return
        delay = state.next_action.sleep if state.next_action else 0.0
        event = RetryEvent(state.attempt_number, exc, classify(exc), delay)
        log.warning(
            "Model call attempt %d failed (%s: %s); retrying in %.2fs",
            event.attempt,
            event.info.reason,
            event.info.error_type,
            delay,
        )
        if on_retry is not None:
            on_retry(event)

    return before_sleep


def _retrying_kwargs(
    policy: CallRetryPolicy, on_retry: Callable[[RetryEvent], None] | None
) -> dict[str, Any]:
    return {
        "stop": stop_after_attempt(policy.max_attempts),
        "wait": _wait(policy),
        "retry": retry_if_exception(_should_retry(policy)),
        "before_sleep": _before_sleep(on_retry),
        "reraise": True,
    }


def call_with_retries(
    fn: Callable[[], T],
    policy: CallRetryPolicy | None = None,
    *,
    on_retry: Callable[[RetryEvent], None] | None = None,
) -> T:
    """Call ``fn()``, retrying transient errors per ``policy``; re-raises the original exception."""
    return Retrying(**_retrying_kwargs(policy or CallRetryPolicy(), on_retry))(fn)


async def acall_with_retries(
    afn: Callable[[], Awaitable[T]],
    policy: CallRetryPolicy | None = None,
    *,
    on_retry: Callable[[RetryEvent], None] | None = None,
) -> T:
    """The async twin of :func:`call_with_retries` (sleeps with ``asyncio.sleep``)."""
    return await AsyncRetrying(**_retrying_kwargs(policy or CallRetryPolicy(), on_retry))(afn)
