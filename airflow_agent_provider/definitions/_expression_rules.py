"""
What a workflow expression may use: its size limits, the callable functions and the bounded operators.

The allow-list the checker enforces at load time and the evaluator applies at run time, kept in one
place so that the two cannot disagree (see :mod:`airflow_agent_provider.definitions.expressions`).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

import simpleeval

MAX_EXPRESSION_LENGTH = 1000
MAX_DEPTH = 40
MAX_POWER = 100
MAX_INT_BITS = 4096
MAX_SEQUENCE_LENGTH = 10_000
# File name given to the parser. (On some syntax errors CPython tries to open it to quote the line.)
SOURCE_NAME = "<expression>"

# Keys that may not follow a dot: simpleeval's own block list (dunders, func_*, frame attributes,
# format/mro), kept even though a dot only reads mapping keys here, as a second line of defence.
BLOCKED_PREFIXES = tuple(simpleeval.DISALLOW_PREFIXES)
BLOCKED_KEYS = frozenset(simpleeval.DISALLOW_METHODS) | {
    "f_locals", "f_globals", "f_builtins", "f_back", "f_code", "gi_code", "cr_code", "ag_code", "co_code",
}  # fmt: skip


# -- allowed functions -------------------------------------------------------------------------------


def _lower(value: Any) -> str:
    """``lower(s)``: method calls are not allowed, so the common string helpers are functions."""
    if not isinstance(value, str):
        raise TypeError(f"lower() needs a string, got {type(value).__name__}")
    return value.lower()


def _upper(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"upper() needs a string, got {type(value).__name__}")
    return value.upper()


def _get(container: Any, key: Any, default: Any = None) -> Any:
    """``get(mapping, key, default)``: optional keys without an error (also list indexes)."""
    if isinstance(container, Mapping):
        return container.get(key, default)
    if isinstance(container, (list, tuple)) and isinstance(key, int) and not isinstance(key, bool):
        return container[key] if -len(container) <= key < len(container) else default
    if container is None:
        return default
    raise TypeError(f"get() needs a mapping or a list, got {type(container).__name__}")


def _round(value: Any, digits: Any = None) -> Any:
    if digits is not None and (not isinstance(digits, int) or abs(digits) > 100):
        raise ValueError("round() digits must be a whole number between -100 and 100")
    return round(value) if digits is None else round(value, digits)


FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "len": len,
    "min": min,
    "max": max,
    "sum": sum,
    "any": any,
    "all": all,
    "abs": abs,
    "round": _round,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "lower": _lower,
    "upper": _upper,
    "get": _get,
}

# -- bounded operators -------------------------------------------------------------------------------


def int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _check_int(value: Any) -> Any:
    if isinstance(value, int) and int_bits(value) > MAX_INT_BITS:
        raise ValueError(f"number too large (more than {MAX_INT_BITS} bits)")
    return value


def _check_length(length: int) -> None:
    if length > MAX_SEQUENCE_LENGTH:
        raise ValueError(f"result too long ({length} items; at most {MAX_SEQUENCE_LENGTH})")


def _power(base: Any, exponent: Any) -> Any:
    if isinstance(exponent, (int, float)) and abs(exponent) > MAX_POWER:
        raise ValueError(f"exponent {exponent} is too large (at most {MAX_POWER})")
    whole = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if whole and int_bits(base) * exponent > MAX_INT_BITS:
        raise ValueError(f"number too large (more than {MAX_INT_BITS} bits)")
    return base**exponent


def _multiply(left: Any, right: Any) -> Any:
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
            _check_length(_size(sequence) * max(count, 0))
    if isinstance(left, int) and isinstance(right, int) and int_bits(left) + int_bits(right) > MAX_INT_BITS:
        raise ValueError(f"number too large (more than {MAX_INT_BITS} bits)")
    return left * right


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
        _check_length(_size(left) + _size(right))
    return _check_int(left + right)


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, (str, bytes)):
        raise ValueError("'%' string formatting is not allowed; use + and str()")
    return left % right


def _size(value: Any, budget: int = MAX_SEQUENCE_LENGTH + 1) -> int:
    """Items in ``value`` counting nested lists, so ``[[1] * 9999] * 9999`` is caught too (capped)."""
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, (list, tuple)):
        return 1
    total = len(value)
    for item in value:
        if total >= budget:
            break
        if isinstance(item, (str, list, tuple)):
            total += _size(item, budget - total)
    return total


BIN_OPS: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", _add),
    ast.Sub: ("-", lambda a, b: _check_int(a - b)),
    ast.Mult: ("*", _multiply),
    ast.Div: ("/", lambda a, b: a / b),
    ast.FloorDiv: ("//", lambda a, b: a // b),
    ast.Mod: ("%", _modulo),
    ast.Pow: ("**", _power),
}
UNARY_OPS: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: lambda a: not a,
    ast.USub: lambda a: -a,
    ast.UAdd: lambda a: +a,
}
COMPARE_OPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}
OPERATORS: Mapping[type[ast.AST], Callable[..., Any]] = {
    **{kind: function for kind, (_, function) in BIN_OPS.items()},
    **{kind: function for kind, function in UNARY_OPS.items()},
    **{kind: function for kind, function in COMPARE_OPS.items()},
}

# Node types that are checked and then evaluated; anything else is rejected by name.
ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Call, ast.Name,
    ast.Constant, ast.Attribute, ast.Subscript, ast.Slice, ast.List, ast.Tuple, ast.Set, ast.Dict,
    ast.Load, ast.And, ast.Or, *BIN_OPS, *UNARY_OPS, *COMPARE_OPS,
)  # fmt: skip
REJECTED_WORDS: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda functions are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed; use + and str()",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.Starred: "* unpacking is not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.MatMult: "operator '@' is not allowed",
    ast.BitAnd: "bit operator '&' is not allowed; use 'and'",
    ast.BitOr: "bit operator '|' is not allowed; use 'or'",
    ast.BitXor: "bit operator '^' is not allowed",
    ast.LShift: "shift operator '<<' is not allowed",
    ast.RShift: "shift operator '>>' is not allowed",
    ast.Invert: "operator '~' is not allowed",
}
