"""Tools used by the tests: importable by dotted path, like a deployment's own tools."""

from __future__ import annotations

from pydantic import BaseModel

CALLS: list[tuple[str, dict]] = []


class Invoice(BaseModel):
    number: str
    amount: float


def lookup_invoice(number: str, include_lines: bool = False) -> dict:
    """Look up an ERP invoice by its number.

    The second paragraph is not part of the description.
    """
    CALLS.append(("lookup_invoice", {"number": number, "include_lines": include_lines}))
    return {"number": number, "amount": 120.5, "lines": [1, 2] if include_lines else []}


def add(a: int, b: int) -> int:
    """Add two integers."""
    CALLS.append(("add", {"a": a, "b": b}))
    return a + b


def explode(reason: str = "boom") -> str:
    """A tool that always fails."""
    CALLS.append(("explode", {"reason": reason}))
    raise RuntimeError(f"tool exploded: {reason}")


def make_invoice(invoice: Invoice) -> Invoice:
    """Echo an invoice (nested model argument)."""
    return invoice


def huge() -> str:
    """Return far too much text."""
    return "x" * 100_000


NOT_CALLABLE = 42


class WorkerCrash(BaseException):
    """Stands in for a worker dying mid-task: not an Exception, so the tool runner does not catch it."""


CRASH_ONCE = {"armed": False}


def crash_once(number: str) -> str:
    """Crash the first time while armed, then work."""
    CALLS.append(("crash_once", {"number": number}))
    if CRASH_ONCE["armed"]:
        CRASH_ONCE["armed"] = False
        raise WorkerCrash("worker died")
    return f"invoice {number} is paid"
