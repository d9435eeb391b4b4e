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
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from airflow_agent_provider.definitions._expression_check import Checker, dynamic_names, parse
from airflow_agent_provider.definitions._expression_eval import Evaluator, evaluate_constant_parts
from airflow_agent_provider.definitions._expression_rules import (
    FUNCTIONS as FUNCTIONS,
    MAX_DEPTH as MAX_DEPTH,
    MAX_EXPRESSION_LENGTH as MAX_EXPRESSION_LENGTH,
    MAX_INT_BITS as MAX_INT_BITS,
    MAX_POWER as MAX_POWER,
    MAX_SEQUENCE_LENGTH as MAX_SEQUENCE_LENGTH,
    OPERATORS as OPERATORS,
    SOURCE_NAME as SOURCE_NAME,
)
from airflow_agent_provider.exceptions import ExpressionError as ExpressionError


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
        return Evaluator(self.text, names).run(tree.body)


@functools.lru_cache(maxsize=2048)
def _compile_cached(text: str, allowed: frozenset[str] | None) -> Expression:
    tree = parse(text)
    checker = Checker(text, allowed)
    checker.visit(tree.body, depth=0)
    expression = Expression(
        text=text,
        names=frozenset(checker.names),
        keys=MappingProxyType({name: frozenset(keys) for name, keys in checker.keys.items()}),
        dynamic=frozenset(dynamic_names(tree)),
        _tree=tree,
    )
    evaluate_constant_parts(text, tree.body)
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
