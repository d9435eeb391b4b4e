"""
Load-time checks of a workflow expression: parse, walk the allow-list, collect the names it reads.

A bad expression is a definition error that names the construct and its column, not a failed task.
"""

from __future__ import annotations

import ast

from airflow_agent_provider._suggest import did_you_mean
from airflow_agent_provider.definitions._expression_rules import (
    ALLOWED_NODES,
    BLOCKED_KEYS,
    BLOCKED_PREFIXES,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_SEQUENCE_LENGTH,
    REJECTED_WORDS,
    SOURCE_NAME,
)
from airflow_agent_provider.exceptions import ExpressionError


def parse(text: str) -> ast.Expression:
    # YAML block scalars keep line breaks; an expression is one logical line (same length, same columns).
    source = text.replace("\r", " ").replace("\n", " ")
    if not source.strip():
        raise ExpressionError("the expression is empty", text)
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters", text)
    try:
        return ast.parse(source.strip(), filename=SOURCE_NAME, mode="eval")
    except SyntaxError as exc:
        lead = len(source) - len(source.lstrip())
        # offset 0 is how the parser says "the expression ended too early".
        column = (exc.offset or len(source.strip()) + 1) + lead
        try:
            statement = ast.parse(source.strip(), filename=SOURCE_NAME, mode="exec").body[0]
        except (SyntaxError, ValueError, IndexError):
            raise ExpressionError(f"syntax error: {exc.msg}", text, column) from None
        kind = type(statement).__name__.lower()
        raise ExpressionError(
            f"only a single expression is allowed, not a statement ({kind})", text, column
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        raise ExpressionError(f"cannot parse the expression: {exc}", text) from None


def column(text: str, node: ast.AST) -> int | None:
    """1-based character column of ``node`` (ast offsets count UTF-8 bytes)."""
    offset = getattr(node, "col_offset", None)
    if offset is None:
        return None
    if isinstance(node, ast.Attribute) and node.end_col_offset is not None:
        offset = node.end_col_offset - len(node.attr.encode("utf-8"))  # point at the key after the dot
    stripped = text.replace("\r", " ").replace("\n", " ")
    lead = len(stripped) - len(stripped.lstrip())
    return len(stripped.strip().encode("utf-8")[:offset].decode("utf-8", errors="ignore")) + lead + 1


class Checker:
    """Walks the tree once: rejects what is not allowed, collects names and their literal keys."""

    def __init__(self, text: str, allowed: frozenset[str] | None) -> None:
        self.text = text
        self.allowed = allowed
        self.names: set[str] = set()
        self.keys: dict[str, set[str]] = {}

    def fail(self, node: ast.AST, reason: str) -> ExpressionError:
        return ExpressionError(reason, self.text, column(self.text, node))

    def visit(self, node: ast.AST, depth: int) -> None:
        if depth > MAX_DEPTH and isinstance(node, ast.expr):
            raise self.fail(node, f"the expression is nested too deeply (more than {MAX_DEPTH} levels)")
        kind = type(node)
        if kind in REJECTED_WORDS:
            raise self.fail(node, REJECTED_WORDS[kind])
        if not isinstance(node, ALLOWED_NODES):
            raise self.fail(node, f"{kind.__name__} is not allowed in an expression")
        handler = getattr(self, f"visit_{kind.__name__}", None)
        if handler is not None:
            handler(node, depth)
        else:
            for child in ast.iter_child_nodes(node):
                self.visit(child, depth + 1)

    def visit_Name(self, node: ast.Name, depth: int) -> None:
        if node.id in FUNCTIONS:
            raise self.fail(node, f"{node.id!r} is a function: call it as {node.id}(...)")
        if self.allowed is not None and node.id not in self.allowed:
            allowed = ", ".join(sorted(self.allowed)) or "none"
            reason = f"unknown name {node.id!r} (allowed names: {allowed})" + did_you_mean(
                node.id, self.allowed
            )
            raise self.fail(node, reason)
        self.names.add(node.id)

    def visit_Constant(self, node: ast.Constant, depth: int) -> None:
        value = node.value
        if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
            return
        if isinstance(value, str):
            if len(value) > MAX_SEQUENCE_LENGTH:
                raise self.fail(node, f"string literal too long (at most {MAX_SEQUENCE_LENGTH} characters)")
            return
        raise self.fail(node, f"{type(value).__name__} literals are not allowed")

    def visit_Attribute(self, node: ast.Attribute, depth: int) -> None:
        self.check_key(node, node.attr)
        self.visit(node.value, depth + 1)
        if isinstance(node.value, ast.Name):
            self.keys.setdefault(node.value.id, set()).add(node.attr)

    def visit_Subscript(self, node: ast.Subscript, depth: int) -> None:
        self.visit(node.value, depth + 1)
        self.visit(node.slice, depth + 1)
        key = node.slice.value if isinstance(node.slice, ast.Constant) else None
        if isinstance(node.value, ast.Name) and isinstance(key, str):
            self.keys.setdefault(node.value.id, set()).add(key)

    def check_key(self, node: ast.AST, key: str) -> None:
        if key.startswith(BLOCKED_PREFIXES):
            raise self.fail(node, f"'.{key}' is not allowed: names starting with '_' or 'func_' are private")
        if key in BLOCKED_KEYS:
            raise self.fail(
                node, f"'.{key}' is not allowed after a dot (blocked name); write ['{key}'] for a data key"
            )

    def visit_Call(self, node: ast.Call, depth: int) -> None:
        if isinstance(node.func, ast.Attribute):
            # Report what the call is made on first: '__import__' or '.__class__' says more than "a method".
            self.visit(node.func.value, depth + 1)
            self.check_key(node.func, node.func.attr)
            raise self.fail(
                node,
                f"method calls are not allowed (.{node.func.attr}(...)); use one of the functions: {_function_list()}",
            )
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only the listed functions can be called")
        if node.func.id not in FUNCTIONS:
            reason = f"function {node.func.id!r} is not allowed (allowed: {_function_list()})"
            reason += did_you_mean(node.func.id, FUNCTIONS, cutoff=0.7)
            raise self.fail(node, reason)
        if node.keywords:
            raise self.fail(node, f"keyword arguments are not allowed in {node.func.id}(...)")
        for argument in node.args:
            self.visit(argument, depth + 1)

    def visit_UnaryOp(self, node: ast.UnaryOp, depth: int) -> None:
        if type(node.op) in REJECTED_WORDS:
            raise self.fail(node, REJECTED_WORDS[type(node.op)])
        self.visit(node.op, depth + 1)
        self.visit(node.operand, depth + 1)

    def visit_Dict(self, node: ast.Dict, depth: int) -> None:
        if any(key is None for key in node.keys):
            raise self.fail(node, "** unpacking is not allowed")
        for child in [*(key for key in node.keys if key is not None), *node.values]:
            self.visit(child, depth + 1)

    def visit_BinOp(self, node: ast.BinOp, depth: int) -> None:
        if type(node.op) in REJECTED_WORDS:  # operator nodes have no position: report the operation's
            raise self.fail(node, REJECTED_WORDS[type(node.op)])
        if (
            isinstance(node.op, ast.Mod)
            and isinstance(node.left, ast.Constant)
            and isinstance(node.left.value, str)
        ):
            raise self.fail(node, "'%' string formatting is not allowed; use + and str()")
        self.visit(node.op, depth + 1)
        self.visit(node.left, depth + 1)
        self.visit(node.right, depth + 1)


def _function_list() -> str:
    return ", ".join(FUNCTIONS)


class _DynamicUses(ast.NodeVisitor):
    """Names used other than as the base of a literal key (``len(results)``, ``results[x]``)."""

    def __init__(self) -> None:
        self.dynamic: set[str] = set()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if not isinstance(node.value, ast.Name):
            self.visit(node.value)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        literal = isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)
        if not (isinstance(node.value, ast.Name) and literal):
            self.visit(node.value)
        self.visit(node.slice)

    def visit_Call(self, node: ast.Call) -> None:
        for argument in node.args:  # the function name is not a data name
            self.visit(argument)

    def visit_Name(self, node: ast.Name) -> None:
        self.dynamic.add(node.id)


def dynamic_names(tree: ast.AST) -> set[str]:
    visitor = _DynamicUses()
    visitor.visit(tree)
    return visitor.dynamic


def reads_names(node: ast.AST) -> bool:
    """True when ``node`` reads any data name (the name of a called function does not count)."""
    called = {id(child.func) for child in ast.walk(node) if isinstance(child, ast.Call)}
    return any(isinstance(child, ast.Name) and id(child) not in called for child in ast.walk(node))
