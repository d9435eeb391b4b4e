"""What a Jinja template in a workflow file may do: read the narrow prompt context, nothing more.

A workflow file author is not a DAG author: the file must not reach Airflow's full template context
(``{{ conn.<id>.password }}``, ``{{ var.value.<name> }}``, ``{{ ti.xcom_pull(...) }}``, ``macros``...),
because whatever the prompt holds goes to the model and, through its reply, into XCom and the run
result. So each templated field is parsed into Jinja's AST when the file is loaded, and refused when
it reads a name outside :data:`~.models.PROMPT_NAMES` (Jinja's own globals such as ``range`` aside),
reaches Python internals through attributes (``__class__``, ``mro``, ``gi_frame``...; Airflow
renders in a sandbox, this is the second line), loads other templates (``include``, ``import``,
``extends`` would read files of the template search path), or uses ``**`` (``9 ** 9 ** 9`` would
stall the worker). The operator renders YAML workflows with the same narrow context (defence in depth).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import jinja2
import jinja2.meta
import jinja2.sandbox
from jinja2 import nodes

from airflow_agent_provider.definitions.models import PROMPT_NAMES

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
_LOADING_NODES = {nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "from ... import", nodes.Extends: "extends"}
_ENV = jinja2.Environment(autoescape=False)


class TemplateSyntaxProblem(ValueError):
    """The text is not a valid Jinja template; carries the template line."""

    def __init__(self, message: str, lineno: int | None) -> None:
        super().__init__(message)
        self.lineno = lineno


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
    return frozenset(undeclared_names(parsed)), tuple(template_problems(parsed, field))


def undeclared_names(parsed: nodes.Template) -> set[str]:
    """The context names the template reads (not set in it by ``{% set %}``, loops or macros)."""
    return set(jinja2.meta.find_undeclared_variables(parsed))


def template_problems(parsed: nodes.Template, field: str) -> list[str]:
    """Why the parsed template of ``field`` is refused; an empty list means it may be rendered."""
    problems: list[str] = []
    allowed = ", ".join(sorted(PROMPT_NAMES))
    for name in sorted(undeclared_names(parsed) - PROMPT_NAMES - JINJA_GLOBALS):
        problems.append(
            f"{field} uses {name!r}, which a workflow template cannot read (Airflow's full template context "
            f"such as conn, var, ti and macros is not available to workflow files); allowed names: {allowed}"
        )
    for node_type, statement in _LOADING_NODES.items():
        if any(True for _ in parsed.find_all(node_type)):
            problems.append(f"{field} uses {{% {statement} %}}: workflow templates cannot load other templates")
    if any(True for _ in parsed.find_all(nodes.Pow)):
        problems.append(f"{field} uses the power operator '**', which workflow templates cannot use")
    for attribute in sorted(set(_unsafe_attributes(parsed))):
        problems.append(
            f"{field} reaches the attribute {attribute!r}: workflow templates cannot read Python internals "
            "(names starting with '_', mro, gi_frame, ...)"
        )
    return problems


def _unsafe(name: str) -> bool:
    return name.startswith("_") or name in UNSAFE_ATTRIBUTES


def _unsafe_attributes(parsed: nodes.Template) -> Iterator[str]:
    for node in parsed.find_all(nodes.Getattr):
        if _unsafe(node.attr):
            yield node.attr
    for node in parsed.find_all(nodes.Getitem):
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str) and _unsafe(node.arg.value):
            yield node.arg.value
    for node in parsed.find_all((nodes.Filter, nodes.Test)):
        if node.name not in _ATTRIBUTE_FILTERS:
            continue
        arguments = [*node.args, *(keyword.value for keyword in node.kwargs)]
        for argument in arguments:
            if isinstance(argument, nodes.Const) and isinstance(argument.value, str):
                for part in argument.value.split("."):
                    if _unsafe(part):
                        yield part
