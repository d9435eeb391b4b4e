"""
What a Jinja template in a workflow file may do: read the narrow prompt context, nothing more.

A workflow file author is not a DAG author: the file must not reach Airflow's full template context
(``{{ conn.<id>.password }}``, ``{{ var.value.<name> }}``, ``{{ ti.xcom_pull(...) }}``, ``macros``...),
because whatever the prompt holds goes to the model and, through its reply, into XCom and the run
result. So each templated field is parsed into Jinja's AST when the file is loaded, and refused when
it reads a name outside :data:`~.models.PROMPT_NAMES` (Jinja's own globals such as ``range`` aside),
reaches Python internals through attributes (``__class__``, ``mro``, ``gi_frame``...; Airflow
renders in a sandbox, this is the second line), loads other templates (``include``, ``import``,
``extends`` would read files of the template search path), or uses ``**`` or numbers above
:data:`MAX_TEMPLATE_NUMBER` (``9 ** 9 ** 9``, ``'x' * 999999999`` or ``center(999999999)`` would stall
the worker or exhaust its memory while rendering). The operator renders YAML workflows with the same narrow context (defence in depth).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import jinja2
import jinja2.meta
import jinja2.sandbox
from jinja2 import nodes

from airflow_agent_provider.definitions.models import PROMPT_NAMES
from airflow_agent_provider.exceptions import TemplateSyntaxProblem as TemplateSyntaxProblem

#: Names Jinja itself provides to every template.
JINJA_GLOBALS = frozenset(jinja2.defaults.DEFAULT_NAMESPACE)
#: Attributes that lead from a value to the interpreter (besides any name starting with ``_``).
UNSAFE_ATTRIBUTES = frozenset(
    {"mro"}
    | jinja2.sandbox.UNSAFE_FUNCTION_ATTRIBUTES
    | jinja2.sandbox.UNSAFE_METHOD_ATTRIBUTES
    | jinja2.sandbox.UNSAFE_GENERATOR_ATTRIBUTES
    | jinja2.sandbox.UNSAFE_COROUTINE_ATTRIBUTES
    | jinja2.sandbox.UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
    | {"func_globals", "func_code", "f_globals", "f_locals", "f_builtins", "co_code", "tb_frame", "cr_frame"}
)
#: Filters whose string arguments name attributes (``map(attribute='x.y')``, ``attr('x')``).
_ATTRIBUTE_FILTERS = frozenset(
    {"attr", "map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max", "dictsort"}
)
_LOADING_NODES = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
    nodes.Extends: "extends",
}
_ENV = jinja2.Environment(autoescape=False)
#: Largest number a template may write (see :func:`_huge_numbers`).
MAX_TEMPLATE_NUMBER = 100_000
_DIGITS = re.compile(r"\d+")


def parse_template(template: str) -> nodes.Template:
    """Jinja's AST of ``template``. :raises TemplateSyntaxProblem: invalid syntax (or absurd nesting)."""
    try:
        return _ENV.parse(template)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxProblem(exc.message or "invalid syntax", exc.lineno) from None
    except RecursionError:
        raise TemplateSyntaxProblem("the template is nested too deeply to parse", None) from None


@functools.lru_cache(maxsize=4096)
def analyse_template(template: str, field: str) -> tuple[frozenset[str] | None, tuple[str, ...]]:
    """
    ``(names the template reads, problems)`` of one templated field; names is None when it does not parse.

    Cached: a fleet's agents share their templates (``system_prompt`` from ``defaults:``, generated
    prompts), and text without ``{`` cannot contain Jinja at all, so it is not parsed.
    """
    if "{" not in template:
        return frozenset(), ()
    try:
        parsed = parse_template(template)
    except TemplateSyntaxProblem as exc:
        where = f" (template line {exc.lineno})" if exc.lineno is not None else ""
        return None, (f"invalid Jinja template{where}: {exc}",)
    if _sizing_problems(parsed, field):
        # Finding the names runs Jinja's code generator, which folds constant expressions: it would
        # build ``'lol' * 999999999`` (3 GB) in the dag-processor. A refused size skips the names.
        return frozenset(), tuple(template_problems(parsed, field, names=frozenset()))
    names = frozenset(undeclared_names(parsed))
    return names, tuple(template_problems(parsed, field, names=names))


def undeclared_names(parsed: nodes.Template) -> set[str]:
    """The context names the template reads (not set in it by ``{% set %}``, loops or macros)."""
    return set(jinja2.meta.find_undeclared_variables(parsed))


def template_problems(parsed: nodes.Template, field: str, names: frozenset[str] | None = None) -> list[str]:
    """
    Why the parsed template of ``field`` is refused; an empty list means it may be rendered.

    ``names``: the names it reads, when already known (:func:`undeclared_names` otherwise).
    """
    problems: list[str] = []
    allowed = ", ".join(sorted(PROMPT_NAMES))
    read = undeclared_names(parsed) if names is None else names
    for name in sorted(read - PROMPT_NAMES - JINJA_GLOBALS):
        problems.append(
            f"{field} uses {name!r}, which a workflow template cannot read (Airflow's full template context "
            f"such as conn, var, ti and macros is not available to workflow files); allowed names: {allowed}"
        )
    for node_type, statement in _LOADING_NODES.items():
        if any(True for _ in parsed.find_all(node_type)):
            problems.append(
                f"{field} uses {{% {statement} %}}: workflow templates cannot load other templates"
            )
    problems += _sizing_problems(parsed, field)
    for attribute in sorted(set(_unsafe_attributes(parsed))):
        problems.append(
            f"{field} reaches the attribute {attribute!r}: workflow templates cannot read Python internals "
            "(names starting with '_', mro, gi_frame, ...)"
        )
    return problems


def _sizing_problems(parsed: nodes.Template, field: str) -> list[str]:
    """The power operator and numbers that size what rendering builds: checked on the AST alone."""
    problems: list[str] = []
    if any(True for _ in parsed.find_all(nodes.Pow)):
        problems.append(f"{field} uses the power operator '**', which workflow templates cannot use")
    if _huge_numbers(parsed) or _huge_products(parsed):
        problems.append(
            f"{field} uses a number above {MAX_TEMPLATE_NUMBER:,} (a repeat count, width or padding that "
            "large would make rendering allocate without bound)"
        )
    return problems


def _product_factors(node: nodes.Node) -> Iterator[nodes.Node]:
    """The factors of a chain of ``*`` (``'a' * 9 * 9`` is ``Mul(Mul('a', 9), 9)``: three factors)."""
    if isinstance(node, nodes.Mul):
        yield from _product_factors(node.left)
        yield from _product_factors(node.right)
    else:
        yield node


def _huge_products(parsed: nodes.Template) -> bool:
    """A chain of ``*`` whose numbers multiply to more than the bound (``'lol' * 99999 * 99999``)."""
    for product in parsed.find_all(nodes.Mul):
        total = 1.0
        for factor in _product_factors(product):
            value = factor.value if isinstance(factor, nodes.Const) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total *= abs(value)
        if total > MAX_TEMPLATE_NUMBER:
            return True
    return False


def _huge_numbers(parsed: nodes.Template) -> bool:
    """Numeric constants above the bound, and format strings with a width above it (``'%999999999s'``)."""
    # Where a number sizes what is built: a factor of '*', an argument of a filter, test or call.
    # (A comparison such as ``total > 1000000`` builds nothing and stays allowed.)
    sizing: list[nodes.Node] = []
    for product in parsed.find_all(nodes.Mul):
        sizing += [product.left, product.right]
    for filter_or_test in parsed.find_all((nodes.Filter, nodes.Test)):
        sizing += [*filter_or_test.args, *(keyword.value for keyword in filter_or_test.kwargs)]
    for call in parsed.find_all(nodes.Call):
        sizing += [*call.args, *(keyword.value for keyword in call.kwargs)]
    for node in sizing:
        value = node.value if isinstance(node, nodes.Const) else None
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and abs(value) > MAX_TEMPLATE_NUMBER
        ):
            return True
    format_strings = [
        node.node for node in parsed.find_all(nodes.Filter) if node.name == "format" and node.node is not None
    ]
    format_strings += [
        node.node for node in parsed.find_all(nodes.Getattr) if node.attr in ("format", "format_map")
    ]
    for template in format_strings:
        if isinstance(template, nodes.Const) and isinstance(template.value, str):
            if any(int(digits) > MAX_TEMPLATE_NUMBER for digits in _DIGITS.findall(template.value)):
                return True
    return False


def _unsafe(name: str) -> bool:
    return name.startswith("_") or name in UNSAFE_ATTRIBUTES


def _unsafe_attributes(parsed: nodes.Template) -> Iterator[str]:
    for getattr_node in parsed.find_all(nodes.Getattr):
        if _unsafe(getattr_node.attr):
            yield getattr_node.attr
    for getitem in parsed.find_all(nodes.Getitem):
        key = getitem.arg
        if isinstance(key, nodes.Const) and isinstance(key.value, str) and _unsafe(key.value):
            yield key.value
    for filter_or_test in parsed.find_all((nodes.Filter, nodes.Test)):
        if filter_or_test.name not in _ATTRIBUTE_FILTERS:
            continue
        arguments = [*filter_or_test.args, *(keyword.value for keyword in filter_or_test.kwargs)]
        for argument in arguments:
            if isinstance(argument, nodes.Const) and isinstance(argument.value, str):
                for part in argument.value.split("."):
                    if _unsafe(part):
                        yield part
