"""
Safe expressions for ``condition``, ``for_each`` and ``repeat_until`` in workflow files.

Workflow files are data written by people who are not necessarily trusted with code on the workers,
so an expression is never given to ``eval``/``exec``. It is parsed once with :func:`ast.parse` at
definition time, checked against an allow-list of syntax (anything not listed is an error that names
the construct and its column), and evaluated later by a locked-down :mod:`simpleeval` evaluator over
plain data (dicts, lists, strings, numbers, booleans, None).

What an expression may contain (everything else is rejected when the workflow is loaded):

* literals: strings, integers, floats, ``True``, ``False``, ``None``; list ``[...]``, tuple
  ``(...)``, set ``{...}`` and dict ``{k: v}`` displays (no ``*``/``**`` unpacking);
* names: only those the field allows (``results``, ``params``, ``item``, ``last``, ``iteration``);
* key access: ``results.agent.output.field`` is the same as ``results['agent']['output']['field']``.
  A dot only reads a key of a mapping, never a Python attribute, so methods and dunders are out of
  reach; keys starting with ``_`` or ``func_`` and simpleeval's blocked names (``mro``, ``format``,
  ``gi_frame``, ...) cannot be used after a dot. Indexing and slicing: ``x[0]``, ``x[-1]``, ``x[1:3]``,
  ``results['HR.payroll']``. A missing key or index is an :class:`ExpressionError`; use
  ``get(mapping, 'key', default)`` for optional keys;
* operators: ``+ - * / // % **``, unary ``- + not``, ``and or``, comparisons
  ``== != < <= > >= in not in is is not`` (chained too) and ``a if cond else b``;
* calls of these pure functions only, positional arguments only: ``len min max sum any all abs round
  int float str bool lower upper get`` (``lower(s)``/``upper(s)`` instead of methods,
  ``get(mapping, key[, default])``).

Not allowed: attribute calls (``x.lower()``), any other function or builtin (``open``, ``eval``,
``getattr``, ``__import__``, ``type`` ...), keyword arguments, lambdas, comprehensions and generator
expressions, f-strings, ``:=``, statements (``import``, assignments), bit operators and ``@``.

Limits: at most :data:`MAX_EXPRESSION_LENGTH` characters and :data:`MAX_DEPTH` levels of nesting;
exponents at most :data:`MAX_POWER` and integer results at most :data:`MAX_INT_BITS` bits; strings
and lists built by ``+`` or ``*`` at most :data:`MAX_SEQUENCE_LENGTH` items; ``%`` is arithmetic only
(no ``'%s' % x`` formatting). Parts of an expression that use no names are evaluated once at load
time, so ``'x' * 10**9`` or ``2 ** 10**9`` is a definition error, not a run-time surprise.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import simpleeval

from airflow_agent_provider._suggest import did_you_mean
from airflow_agent_provider.exceptions import ExpressionError as ExpressionError

MAX_EXPRESSION_LENGTH = 1000
MAX_DEPTH = 40
MAX_POWER = 100
MAX_INT_BITS = 4096
MAX_SEQUENCE_LENGTH = 10_000
# File name given to the parser. (On some syntax errors CPython tries to open it to quote the line.)
SOURCE_NAME = "<expression>"

# Keys that may not follow a dot: simpleeval's own block list (dunders, func_*, frame attributes,
# format/mro), kept even though a dot only reads mapping keys here, as a second line of defence.
_BLOCKED_PREFIXES = tuple(simpleeval.DISALLOW_PREFIXES)
_BLOCKED_KEYS = frozenset(simpleeval.DISALLOW_METHODS) | {
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


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _check_int(value: Any) -> Any:
    if isinstance(value, int) and _int_bits(value) > MAX_INT_BITS:
        raise ValueError(f"number too large (more than {MAX_INT_BITS} bits)")
    return value


def _check_length(length: int) -> None:
    if length > MAX_SEQUENCE_LENGTH:
        raise ValueError(f"result too long ({length} items; at most {MAX_SEQUENCE_LENGTH})")


def _power(base: Any, exponent: Any) -> Any:
    if isinstance(exponent, (int, float)) and abs(exponent) > MAX_POWER:
        raise ValueError(f"exponent {exponent} is too large (at most {MAX_POWER})")
    whole = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if whole and _int_bits(base) * exponent > MAX_INT_BITS:
        raise ValueError(f"number too large (more than {MAX_INT_BITS} bits)")
    return base**exponent


def _multiply(left: Any, right: Any) -> Any:
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
            _check_length(_size(sequence) * max(count, 0))
    if isinstance(left, int) and isinstance(right, int) and _int_bits(left) + _int_bits(right) > MAX_INT_BITS:
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


_BIN_OPS: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", _add),
    ast.Sub: ("-", lambda a, b: _check_int(a - b)),
    ast.Mult: ("*", _multiply),
    ast.Div: ("/", lambda a, b: a / b),
    ast.FloorDiv: ("//", lambda a, b: a // b),
    ast.Mod: ("%", _modulo),
    ast.Pow: ("**", _power),
}
_UNARY_OPS: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: lambda a: not a,
    ast.USub: lambda a: -a,
    ast.UAdd: lambda a: +a,
}
_COMPARE_OPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
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
    **{kind: function for kind, (_, function) in _BIN_OPS.items()},
    **{kind: function for kind, function in _UNARY_OPS.items()},
    **{kind: function for kind, function in _COMPARE_OPS.items()},
}

# Node types that are checked and then evaluated; anything else is rejected by name.
_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Call, ast.Name,
    ast.Constant, ast.Attribute, ast.Subscript, ast.Slice, ast.List, ast.Tuple, ast.Set, ast.Dict,
    ast.Load, ast.And, ast.Or, *_BIN_OPS, *_UNARY_OPS, *_COMPARE_OPS,
)  # fmt: skip
_REJECTED_WORDS: dict[type[ast.AST], str] = {
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


# -- the compiled expression -------------------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    """
    A checked expression, ready to evaluate many times.

    :param text: the expression as written.
    :param names: the top-level names it reads (``results``, ``params`` ...), for definition checks.
    :param keys: per top-level name, the literal first-level keys read from it, e.g.
        ``{'results': {'find_reorders', 'HR.payroll'}, 'params': {'reorder_threshold'}}``.
    :param dynamic: names read other than through a literal key (``results[params.x]``,
        ``len(results)``), whose keys therefore cannot be checked before the run.
    """

    text: str
    names: frozenset[str]
    keys: Mapping[str, frozenset[str]] = field(default_factory=dict, compare=False)
    dynamic: frozenset[str] = field(default=frozenset(), compare=False)
    _tree: ast.Expression | None = field(default=None, repr=False, compare=False)

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """
        Evaluate over ``names`` (plain data). Any failure is an :class:`ExpressionError`.

        :raises ExpressionError: a name it uses is missing, a key does not exist, a type does not
            fit an operator, or a size limit was hit.
        """
        missing = sorted(self.names - set(names))
        if missing:
            raise ExpressionError(f"name {missing[0]!r} is not available here", self.text)
        # An Expression built by hand has not been checked: check it now rather than trust it.
        tree = self._tree if self._tree is not None else compile_expression(self.text)._tree
        if tree is None:  # compile_expression always attaches the checked tree
            raise ExpressionError("the expression was not compiled", self.text)
        return _Evaluator(self.text, names).run(tree.body)


@functools.lru_cache(maxsize=2048)
def _compile_cached(text: str, allowed: frozenset[str] | None) -> Expression:
    tree = _parse(text)
    checker = _Checker(text, allowed)
    checker.visit(tree.body, depth=0)
    expression = Expression(
        text=text,
        names=frozenset(checker.names),
        keys=MappingProxyType({name: frozenset(keys) for name, keys in checker.keys.items()}),
        dynamic=frozenset(_dynamic_names(tree)),
        _tree=tree,
    )
    _evaluate_constant_parts(text, tree.body)
    return expression


def compile_expression(text: str, allowed_names: Collection[str] | None = None) -> Expression:
    """
    Parse and check ``text`` now, so that a bad expression is a definition error, not a failed task.

    :param allowed_names: the names the field offers (e.g. ``{'results', 'params'}``); any other
        name is an error with a "did you mean" hint. ``None`` accepts any name.
    :raises ExpressionError: with the reason and, where known, the column.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, got {type(text).__name__}")
    return _compile_cached(text, None if allowed_names is None else frozenset(allowed_names))


def _parse(text: str) -> ast.Expression:
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


def _column(text: str, node: ast.AST) -> int | None:
    """1-based character column of ``node`` (ast offsets count UTF-8 bytes)."""
    offset = getattr(node, "col_offset", None)
    if offset is None:
        return None
    if isinstance(node, ast.Attribute) and node.end_col_offset is not None:
        offset = node.end_col_offset - len(node.attr.encode("utf-8"))  # point at the key after the dot
    stripped = text.replace("\r", " ").replace("\n", " ")
    lead = len(stripped) - len(stripped.lstrip())
    return len(stripped.strip().encode("utf-8")[:offset].decode("utf-8", errors="ignore")) + lead + 1


class _Checker:
    """Walks the tree once: rejects what is not allowed, collects names and their literal keys."""

    def __init__(self, text: str, allowed: frozenset[str] | None) -> None:
        self.text = text
        self.allowed = allowed
        self.names: set[str] = set()
        self.keys: dict[str, set[str]] = {}

    def fail(self, node: ast.AST, reason: str) -> ExpressionError:
        return ExpressionError(reason, self.text, _column(self.text, node))

    def visit(self, node: ast.AST, depth: int) -> None:
        if depth > MAX_DEPTH and isinstance(node, ast.expr):
            raise self.fail(node, f"the expression is nested too deeply (more than {MAX_DEPTH} levels)")
        kind = type(node)
        if kind in _REJECTED_WORDS:
            raise self.fail(node, _REJECTED_WORDS[kind])
        if not isinstance(node, _ALLOWED_NODES):
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
        if key.startswith(_BLOCKED_PREFIXES):
            raise self.fail(node, f"'.{key}' is not allowed: names starting with '_' or 'func_' are private")
        if key in _BLOCKED_KEYS:
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
        if type(node.op) in _REJECTED_WORDS:
            raise self.fail(node, _REJECTED_WORDS[type(node.op)])
        self.visit(node.op, depth + 1)
        self.visit(node.operand, depth + 1)

    def visit_Dict(self, node: ast.Dict, depth: int) -> None:
        if any(key is None for key in node.keys):
            raise self.fail(node, "** unpacking is not allowed")
        for child in [*(key for key in node.keys if key is not None), *node.values]:
            self.visit(child, depth + 1)

    def visit_BinOp(self, node: ast.BinOp, depth: int) -> None:
        if type(node.op) in _REJECTED_WORDS:  # operator nodes have no position: report the operation's
            raise self.fail(node, _REJECTED_WORDS[type(node.op)])
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


def _dynamic_names(tree: ast.AST) -> set[str]:
    visitor = _DynamicUses()
    visitor.visit(tree)
    return visitor.dynamic


def _reads_names(node: ast.AST) -> bool:
    """True when ``node`` reads any data name (the name of a called function does not count)."""
    called = {id(child.func) for child in ast.walk(node) if isinstance(child, ast.Call)}
    return any(isinstance(child, ast.Name) and id(child) not in called for child in ast.walk(node))


def _evaluate_constant_parts(text: str, node: ast.AST) -> None:
    """Evaluate the largest name-free parts now: a too-large power or string is a definition error."""
    if not _reads_names(node):
        if not isinstance(node, ast.expr) or isinstance(node, ast.Constant):
            return
        try:
            _Evaluator(text, {}).run(node)
        except ExpressionError as exc:
            # A part without names fails the same way on every run: better to say so now.
            raise ExpressionError(
                f"this part always fails: {exc.reason}", text, exc.column or _column(text, node)
            ) from None
        return
    for child in ast.iter_child_nodes(node):
        _evaluate_constant_parts(text, child)


# -- evaluation --------------------------------------------------------------------------------------


class _Evaluator(simpleeval.EvalWithCompoundTypes):  # type: ignore[misc]  # simpleeval ships no type hints
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
            raise ExpressionError(str(exc), self.text, _column(self.text, node)) from exc
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
        return ExpressionError(reason, self.text, _column(self.text, node))

    def _eval_name(self, node: ast.Name) -> Any:
        if node.id not in self.names:
            raise self.fail(node, f"name {node.id!r} is not available here")
        return self.names[node.id]

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        key = node.attr
        if key.startswith(_BLOCKED_PREFIXES) or key in _BLOCKED_KEYS:
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
        if isinstance(result, int) and _int_bits(result) > MAX_INT_BITS:
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
            symbol = _BIN_OPS.get(type(node.op), ("?", None))[0]
            raise self.fail(node, f"cannot compute {_kind(left)} {symbol} {_kind(right)}: {exc}") from exc


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
             tuple: "a list", dict: "a mapping", set: "a set"}  # fmt: skip
    return names.get(type(value), f"a {type(value).__name__}")
