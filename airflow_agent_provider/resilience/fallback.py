"""
Fall back to another model (or provider) when the primary is down.

Why only on some errors: a fallback is for the provider's trouble, not the request's. If the primary's
breaker is open, or the primary still fails transiently after its own retries, the next target is
tried. A permanent error (a 400 for a prompt that is too long, a 401, a budget that ran out) would fail
the same way on the next target -- or, worse, succeed at a price nobody chose -- so it is raised at
once. The result names the target that answered, so the operator can record which model did the work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, NoReturn, TypeVar

from airflow_agent_provider.exceptions import NoFallbackTargets as NoFallbackTargets
from airflow_agent_provider.resilience.breaker import CircuitBreaker, CircuitOpenError
from airflow_agent_provider.resilience.classify import classify

# Re-exported; defined in a leaf module because building a DAG imports it.
from airflow_agent_provider.resilience.targets import FallbackTarget as FallbackTarget  # noqa: TC001

T = TypeVar("T")


@dataclass(frozen=True)
class FallbackAttempt:
    """What happened to one target: ``ok``, ``circuit_open``, ``transient_error`` or ``permanent_error``."""

    target: FallbackTarget
    outcome: str
    reason: str | None = None
    error_type: str | None = None
    retry_after_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = self.target.to_dict()
        return data


def _failed(target: FallbackTarget, exc: BaseException) -> tuple[FallbackAttempt, bool]:
    """The log entry for a failure, and whether to go on to the next target."""
    if isinstance(exc, CircuitOpenError):
        return FallbackAttempt(
            target, "circuit_open", "circuit_open", type(exc).__name__, exc.retry_in_s
        ), True
    info = classify(exc)
    outcome = "transient_error" if info.transient else "permanent_error"
    return FallbackAttempt(target, outcome, info.reason, info.error_type, info.retry_after_s), info.transient


def _all_failed(last: BaseException | None, attempts: list[FallbackAttempt]) -> NoReturn:
    """Raise the last error with a note listing every attempt (each target failed transiently)."""
    if last is None:  # unreachable: an empty target list is rejected before the loop
        raise NoFallbackTargets("no fallback target was tried")
    summary = "; ".join(f"{a.target.key}: {a.outcome} ({a.reason})" for a in attempts)
    last.add_note(f"all fallback targets failed: {summary}")
    raise last


def call_with_fallbacks(
    targets: Sequence[FallbackTarget],
    call_one: Callable[[FallbackTarget], T],
    breaker_for: Callable[[FallbackTarget], CircuitBreaker] | None = None,
) -> tuple[T, FallbackTarget, list[FallbackAttempt]]:
    """
    Try ``targets`` in order through their breakers; return ``(result, used_target, attempts)``.

    ``call_one`` makes the call for one target (its retries included). When every target fails
    transiently, the last error is raised (still transient, so the task retry takes over) with a note
    listing every attempt; a permanent error is raised at once.
    """
    if not targets:
        raise NoFallbackTargets("call_with_fallbacks needs at least one target")
    attempts: list[FallbackAttempt] = []
    last: BaseException | None = None
    for target in targets:
        breaker = breaker_for(target) if breaker_for is not None else None
        try:
            result = breaker.call(partial(call_one, target)) if breaker else call_one(target)
        except Exception as exc:
            attempt, go_on = _failed(target, exc)
            attempts.append(attempt)
            if not go_on:
                raise
            last = exc
            continue
        attempts.append(FallbackAttempt(target, "ok"))
        return result, target, attempts
    _all_failed(last, attempts)


async def acall_with_fallbacks(
    targets: Sequence[FallbackTarget],
    acall_one: Callable[[FallbackTarget], Awaitable[T]],
    breaker_for: Callable[[FallbackTarget], CircuitBreaker] | None = None,
) -> tuple[T, FallbackTarget, list[FallbackAttempt]]:
    """Async twin of :func:`call_with_fallbacks`."""
    if not targets:
        raise NoFallbackTargets("acall_with_fallbacks needs at least one target")
    attempts: list[FallbackAttempt] = []
    last: BaseException | None = None
    for target in targets:
        breaker = breaker_for(target) if breaker_for is not None else None
        try:
            if breaker is not None:
                result = await breaker.acall(partial(acall_one, target))
            else:
                result = await acall_one(target)
        except Exception as exc:
            attempt, go_on = _failed(target, exc)
            attempts.append(attempt)
            if not go_on:
                raise
            last = exc
            continue
        attempts.append(FallbackAttempt(target, "ok"))
        return result, target, attempts
    _all_failed(last, attempts)
