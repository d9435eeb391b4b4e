"""
Every public exception of the provider, in one module.

Why one module: callers catch by class (``except AgentProviderError``), and the resilience layer
decides by class whether waiting helps. Three layers ask that question -- the retries inside a call,
the circuit breaker and Airflow's task retry policy -- and all of them read it through
``resilience.classify``, which looks at two bases defined here:

* :class:`TransientError`: waiting helps (a store that is down, a rate limit, an open breaker). It may
  say for how long (``retry_after_s``) and why (``reason``).
* :class:`PermanentError`: a retry does exactly the same thing again (a budget that ran out, a
  misconfigured connection, a prompt that reads an unknown name).

An error that is neither is *unclassified*: a bug or an unexpected input, failed at once inside a call
and left to the task's own ``retries`` by the retry policy.

The builtin base each class had before it moved here is kept (``ValueError``, ``TimeoutError``,
``RuntimeError``) so existing ``except ValueError`` clauses still catch it. The old import paths
(``airflow_agent_provider.cost.budget.BudgetExceeded`` ...) still work: those modules re-export.

Import-cheap by design (standard library only, nothing imported at module level from the package):
DAG parsing and the triggerer import it.
"""

from __future__ import annotations

from os import PathLike, fspath
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_agent_provider.definitions.errors import Problem
    from airflow_agent_provider.guard.records import PendingCharge
    from airflow_agent_provider.resilience.classify import ErrorInfo

__all__ = [
    "AgentProviderError",
    "BatchNotEndedError",
    "BatchTooLargeError",
    "BudgetError",
    "BudgetExceeded",
    "CircuitOpenError",
    "ClassifiedError",
    "ExecutionTimeout",
    "ExpressionError",
    "InvalidWorkflowDefinitions",
    "LLMConnectionError",
    "LoopExpressionError",
    "NoFallbackTargets",
    "OutputValidationError",
    "PermanentError",
    "PromptContextError",
    "ProviderConfigError",
    "RateLimitImpossible",
    "RateLimitTimeout",
    "StoreUnavailable",
    "TemplateSyntaxProblem",
    "ToolImportError",
    "TransientError",
    "UnpricedModelError",
    "UnsettledCharge",
    "WorkflowDefinitionError",
]


# -- the bases ----------------------------------------------------------------------------------


class AgentProviderError(Exception):
    """Base of every exception the provider raises on purpose."""


class TransientError(AgentProviderError):
    """
    Waiting helps: retried inside the call, counted by the circuit breaker, retried by the task.

    ``retry_after_s`` is how long waiting takes, when known; ``reason`` a short machine-readable cause.
    """

    transient: ClassVar[bool] = True
    permanent: ClassVar[bool] = False
    reason: str = "marked_transient"
    retry_after_s: float | None = None
    status_code: int | None = None


class PermanentError(AgentProviderError):
    """A retry would do the same thing again: the task fails at once, the breaker does not count it."""

    transient: ClassVar[bool] = False
    permanent: ClassVar[bool] = True
    reason: str = "marked_permanent"
    status_code: int | None = None


# -- configuration and definitions ----------------------------------------------------------------


class ProviderConfigError(AgentProviderError, ValueError):
    """A provider setting has a value that cannot be used; the message names the setting."""


class WorkflowDefinitionError(AgentProviderError):
    """
    A workflow definition file has one or more problems.

    ``str(err)`` names the file and lists every problem, so that a DAG import error shown in the
    Airflow UI is enough to fix the file without re-running the loader problem by problem.
    """

    def __init__(self, path: str | PathLike[str] | None, problems: list[Problem]) -> None:
        super().__init__(path, problems)
        self.path: str | None = fspath(path) if path is not None else None
        self.problems: list[Problem] = list(problems)

    def __str__(self) -> str:
        where = self.path or "<workflow>"
        count = len(self.problems)
        header = f"{where}: {count} problem{'s' if count != 1 else ''} in workflow definition"
        return "\n".join([header, *(f"  - {problem}" for problem in self.problems)])


class InvalidWorkflowDefinitions(AgentProviderError, ValueError):
    """Raised (through the placeholder DAG's validation) to report broken definition files."""


class ExpressionError(AgentProviderError, ValueError):
    """
    An expression is not allowed, does not parse, or failed while being evaluated.

    :param reason: what is wrong, in plain words.
    :param expression: the expression text.
    :param column: 1-based column of the offending part, when known.
    """

    def __init__(self, reason: str, expression: str = "", column: int | None = None) -> None:
        super().__init__(reason, expression, column)
        self.reason = reason
        self.expression = expression
        self.column = column

    def __str__(self) -> str:
        return self.reason if self.column is None else f"{self.reason} (column {self.column})"


class TemplateSyntaxProblem(AgentProviderError, ValueError):
    """The text is not a valid Jinja template; carries the template line."""

    def __init__(self, message: str, lineno: int | None) -> None:
        super().__init__(message)
        self.lineno = lineno


class ToolImportError(AgentProviderError, ValueError):
    """A dotted path in ``tools`` does not name an importable callable."""


class LLMConnectionError(PermanentError, ValueError):
    """A connection that cannot be used as it is (permanent: retrying cannot help)."""

    reason = "connection_misconfigured"


class PromptContextError(PermanentError, ValueError):
    """A workflow prompt reads a name that is not in its context. Permanent: a retry renders the same."""


# -- the agent loop -------------------------------------------------------------------------------


class OutputValidationError(TransientError):
    """
    The model's final answer is not valid JSON or does not match the agent's ``output_schema``.

    Transient for the retry policy: models get a structure wrong now and then, and the next try
    usually gets it right. It is never swallowed into a text fallback, because downstream expressions
    (``results.x.output.skus``) would then break further away from the cause.
    """

    def __init__(self, agent: str, path: str, reason: str) -> None:
        self.agent, self.path, self.reason = agent, path, reason
        super().__init__(
            f"agent {agent}: structured answer does not match its output_schema at {path}: {reason}"
        )


class LoopExpressionError(PermanentError, ValueError):
    """A ``repeat_until`` expression failed on the data it got: permanent, a retry would not change it."""


class ExecutionTimeout(AgentProviderError):
    """
    The task's ``execution_timeout`` ran out in the triggerer.

    Left to the task's standard retries, as on a worker (deliberately neither transient nor permanent).
    """


# -- store, limits, budgets -----------------------------------------------------------------------


class StoreUnavailable(TransientError, RuntimeError):
    """
    The shared store cannot be reached; callers fail the call rather than run unlimited.

    Transient: the resilience layer and Airflow's retry policy retry it later with backoff, because
    running a call without its limits and budget would be worse than waiting for the store.
    """


class RateLimitTimeout(TransientError, TimeoutError):
    """
    The permit could not be had within the caller's timeout.

    Transient, with ``retry_after_s`` = the store's "next chance": the task retry then waits exactly
    as long as the limit needs instead of its generic backoff.
    """

    def __init__(self, key: str, timeout: float, wait_s: float, reason: str | None) -> None:
        self.key, self.timeout, self.wait_s, self.reason = key, timeout, wait_s, reason  # type: ignore[assignment]  # the limiter's reason may be unknown (None): the classifier then says marked_transient
        self.retry_after_s = wait_s
        super().__init__(
            f"rate limit {key!r}: no permit within {timeout:.3f}s "
            f"(limited by {reason or 'unknown'}, next chance in {wait_s:.3f}s)"
        )


class RateLimitImpossible(AgentProviderError, ValueError):
    """The request can never be granted (e.g. more tokens than the per-minute token limit)."""


class BudgetError(PermanentError, RuntimeError):
    """A call may not run because of a budget. Permanent: retrying the task cannot help."""


class BudgetExceeded(BudgetError):
    """The call's maximum cost does not fit in a scope's budget."""

    def __init__(self, scope: str, limit: float, spent: float, reserved: float, amount: float) -> None:
        self.scope = scope
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.amount = amount
        super().__init__(
            f"budget exceeded for {scope}: limit ${limit:.6f}, spent ${spent:.6f}, reserved by running calls "
            f"${reserved:.6f}, this call needs up to ${amount:.6f} "
            f"(${max(limit - spent - reserved, 0.0):.6f} left)"
        )


class UnpricedModelError(BudgetError):
    """A budget applies but the model has no known price: its spend could not be counted."""


class UnsettledCharge(TransientError, RuntimeError):
    """
    The model answered (and was paid) but its budget settlement failed (the store went away).

    Transient: the retry settles :attr:`pending` instead of calling the model again.
    """

    reason = "settlement_failed"

    def __init__(self, pending: PendingCharge, cause: BaseException) -> None:
        self.pending = pending
        super().__init__(
            f"the model answered but its charge (reservation {pending.reservation_id}) could not be settled: "
            f"{type(cause).__name__}: {cause}; a retry settles it without calling the model again"
        )


# -- resilience -----------------------------------------------------------------------------------


class CircuitOpenError(TransientError):
    """The breaker for ``key`` refuses calls now; try again in ``retry_in_s`` (or use a fallback)."""

    reason = "circuit_open"

    def __init__(self, key: str, retry_in_s: float, state: str = "open") -> None:
        super().__init__(f"circuit breaker for {key!r} is {state}; retry in {retry_in_s:.1f}s")
        self.key = key
        self.retry_in_s = retry_in_s
        self.retry_after_s = retry_in_s
        self.state = state


class BatchNotEndedError(TransientError, RuntimeError):
    """A batch's results were asked for before the provider ended it (read them again later)."""


class BatchTooLargeError(PermanentError, ValueError):
    """A single request is larger than one provider batch may be (it can never be submitted as is)."""


class NoFallbackTargets(AgentProviderError, ValueError):
    """``call_with_fallbacks`` needs at least one target."""


class ClassifiedError(AgentProviderError):
    """
    An error rebuilt on the worker from a trigger's error event, carrying its classification.

    The classifier returns its :attr:`info` as it is, so every layer (retries, breaker, Airflow retry
    policy) reads it like the original exception, including the provider's ``retry_after_s``. (It is
    not a :class:`TransientError`/:class:`PermanentError` subclass: the kind is only known per event.)
    """

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(f"{info.error_type or 'Error'}: {info.message}" if info.message else info.reason)
        self.info = info
        self.status_code = info.status_code
        self.retry_after_s = info.retry_after_s
        self.reason = info.reason

    @property
    def transient(self) -> bool:
        return self.info.transient

    @property
    def permanent(self) -> bool:
        """Permanent by classification (an unclassified event is neither)."""
        return self.info.permanent and self.info.classified

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> ClassifiedError:
        from airflow_agent_provider.resilience.classify import classify_event

        return cls(classify_event(event))
