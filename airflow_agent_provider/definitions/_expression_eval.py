"""
Run-time evaluation of a checked workflow expression: a locked-down simpleeval over plain data.

Dots read mapping keys only, calls reach the listed functions only, and every operator is bounded;
the name-free parts of an expression are also evaluated once at load time through the same evaluator.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

import simpleeval

from airflow_agent_provider.definitions._expression_check import column, reads_names
from airflow_agent_provider.definitions._expression_rules import (
    BIN_OPS,
    BLOCKED_KEYS,
    BLOCKED_PREFIXES,
    FUNCTIONS,
    MAX_INT_BITS,
    OPERATORS,
    int_bits,
)
from airflow_agent_provider.exceptions import ExpressionError


def evaluate_constant_parts(text: str, node: ast.AST) -> None:
    """Evaluate the largest name-free parts now: a too-large power or string is a definition error."""
    if not reads_names(node):
        if not isinstance(node, ast.expr) or isinstance(node, ast.Constant):
            return
        try:
            Evaluator(text, {}).run(node)
        except ExpressionError as exc:
            # A part without names fails the same way on every run: better to say so now.
            raise ExpressionError(
                f"this part always fails: {exc.reason}", text, exc.column or column(text, node)
            ) from None
        return
    for child in ast.iter_child_nodes(node):
        evaluate_constant_parts(text, child)


class Evaluator(simpleeval.EvalWithCompoundTypes):  # type: ignore[misc]  # simpleeval ships no type hints
    """simpleeval with our functions and bounded operators; dots read mapping keys, nothing else."""

    def __init__(self, text: str, names: Mapping[str, Any]) -> None:
        super().__init__(operators=dict(OPERATORS), functions=dict(FUNCTIONS), names=dict(names))
        self.text = text
        self.functions = dict(FUNCTIONS)  # EvalWithCompoundTypes adds list/tuple/dict/set: take them out
        for node_type in (ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.JoinedStr, ast.FormattedValue,
                          ast.Assign, ast.AugAssign, ast.Import, ast.Expr):  # fmt: skip
            self.nodes.pop(node_type, None)
        self.ATTR_INDEX_FALLBACK = False

    def run(self, node: ast.AST) -> Any:
        self.expr = self.text
        try:
            return self._eval(node)
        except ExpressionError:
            raise
        except simpleeval.InvalidExpression as exc:
            raise ExpressionError(str(exc), self.text, column(self.text, node)) from exc
        except RecursionError:
            raise ExpressionError("the expression is nested too deeply", self.text) from None
        except ZeroDivisionError as exc:
            raise ExpressionError(f"division by zero: {exc}", self.text) from exc
        except (
            TypeError,
            ValueError,
            KeyError,
            IndexError,
            OverflowError,
            AttributeError,
            MemoryError,
        ) as exc:
            raise ExpressionError(f"{type(exc).__name__}: {exc}", self.text) from exc

    def fail(self, node: ast.AST, reason: str) -> ExpressionError:
        return ExpressionError(reason, self.text, column(self.text, node))

    def _eval_name(self, node: ast.Name) -> Any:
        if node.id not in self.names:
            raise self.fail(node, f"name {node.id!r} is not available here")
        return self.names[node.id]

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        key = node.attr
        if key.startswith(BLOCKED_PREFIXES) or key in BLOCKED_KEYS:
            raise self.fail(node, f"'.{key}' is not allowed")
        container = self._eval(node.value)
        return self._lookup(node, container, key)

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        container = self._eval(node.value)
        key = self._eval(node.slice)
        if isinstance(key, slice):
            if not isinstance(container, (str, list, tuple)):
                raise self.fail(node, f"{ast.unparse(node.value)} cannot be sliced: it is {_kind(container)}")
            return container[key]
        if isinstance(container, (list, tuple, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise self.fail(node, f"{ast.unparse(node.value)} is a list: index it with a whole number")
            if not -len(container) <= key < len(container):
                raise self.fail(
                    node, f"index {key} is out of range: {ast.unparse(node.value)} has {len(container)} items"
                )
            return container[key]
        return self._lookup(node, container, key)

    def _lookup(self, node: ast.Attribute | ast.Subscript, container: Any, key: Any) -> Any:
        where = ast.unparse(node.value)
        if not isinstance(container, Mapping):
            raise self.fail(node, f"cannot read {key!r}: {where} is {_kind(container)}, not a mapping")
        try:
            return container[key]
        except KeyError:
            known = ", ".join(repr(k) for k in list(container)[:10]) or "none"
            raise self.fail(node, f"{where} has no key {key!r} (keys: {known})") from None
        except TypeError:
            raise self.fail(node, f"{key!r} cannot be a key") from None

    def _eval_call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in self.functions or node.keywords:
            raise self.fail(node, "only the listed functions can be called")
        arguments = [self._eval(argument) for argument in node.args]
        result = self.functions[node.func.id](*arguments)
        if isinstance(result, int) and int_bits(result) > MAX_INT_BITS:
            raise self.fail(node, f"number too large (more than {MAX_INT_BITS} bits)")
        return result

    def _eval_constant(self, node: ast.Constant) -> Any:
        if not (node.value is None or isinstance(node.value, (bool, int, float, str))):
            raise self.fail(node, f"{type(node.value).__name__} literals are not allowed")
        return super()._eval_constant(node)

    def _eval_binop(self, node: ast.BinOp) -> Any:
        left = self._eval(node.left)
        right = self._eval(node.right)
        operator = self.operators.get(type(node.op))
        if operator is None:
            raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")
        try:
            return operator(left, right)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
            symbol = BIN_OPS.get(type(node.op), ("?", None))[0]
            raise self.fail(node, f"cannot compute {_kind(left)} {symbol} {_kind(right)}: {exc}") from exc


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
             tuple: "a list", dict: "a mapping", set: "a set"}  # fmt: skip
    return names.get(type(value), f"a {type(value).__name__}")
