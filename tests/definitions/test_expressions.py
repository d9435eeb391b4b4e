"""Safe expressions: what they can do, what they cannot reach, and how they say no."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from airflow_agent_provider.definitions.expressions import (
    FUNCTIONS,
    MAX_EXPRESSION_LENGTH,
    SOURCE_NAME,
    Expression,
    ExpressionError,
    compile_expression,
)

NAMES = frozenset({"results", "params", "item", "last", "iteration"})

DATA: dict[str, Any] = {
    "results": {
        "find_reorders": {"text": "Reorder A-1", "output": {"skus": ["A-1", "B-2"], "count": 2}},
        "HR.payroll": {"text": "Payroll OK", "output": None},
        "__class__": {"text": "a data key that only looks dangerous"},
    },
    "params": {"reorder_threshold": 10, "region": "EU"},
    "item": {"sku": "A-1", "qty": 4},
    "last": {"text": "DRAFT", "output": {"approved": False}},
    "iteration": 2,
}

# -- what works ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("results.find_reorders.output.skus", ["A-1", "B-2"]),
        ("results['HR.payroll'].text", "Payroll OK"),
        ("results.find_reorders.output.count >= params.reorder_threshold", False),
        ("len(results.find_reorders.output.skus) > 1 and params.region == 'EU'", True),
        ("item.sku in results.find_reorders.output.skus", True),
        ("not last.output.approved or iteration >= 3", True),
        ("'APPROVED' in upper(last.text)", False),
        ("lower(results.find_reorders.text)", "reorder a-1"),
        ("get(results['HR.payroll'], 'missing', 'n/a')", "n/a"),
        ("get(results['HR.payroll'].output, 'skus', [])", []),
        ("results.find_reorders.output.skus[-1]", "B-2"),
        ("results.find_reorders.output.skus[0:1]", ["A-1"]),
        ("results['__class__'].text", "a data key that only looks dangerous"),
        ("[min(3, 1, 2), max([4, 5]), sum([1, 2, 3]), abs(-2), round(2.567, 2)]", [1, 5, 6, 2, 2.57]),
        ("int('7') + float('0.5') + int(bool(1))", 8.5),
        ("str(iteration) + '/' + str(3)", "2/3"),
        ("any([False, iteration == 2]) and all([True, 1 < 2 < 3])", True),
        ("'high' if item.qty * 2 > 5 else 'low'", "high"),
        (
            "{'sku': item.sku, 'n': 2 ** 10, 'r': 7 // 2, 'm': 7 % 3}",
            {"sku": "A-1", "n": 1024, "r": 3, "m": 1},
        ),
        ("params.region is not None", True),
        (
            """results.find_reorders.output.count
            > 1""",
            True,
        ),
    ],
)
def test_allowed_expressions_evaluate(text: str, expected: Any):
    assert compile_expression(text, NAMES).evaluate(DATA) == expected


def test_expression_reports_names_and_literal_keys():
    expression = compile_expression(
        "len(results.find_reorders.output.skus) > params.reorder_threshold and results['HR.payroll'].text",
        NAMES,
    )
    assert isinstance(expression, Expression)
    assert expression.names == {"results", "params"}
    assert expression.keys["results"] == {"find_reorders", "HR.payroll"}
    assert expression.keys["params"] == {"reorder_threshold"}
    assert expression.dynamic == frozenset()
    assert compile_expression("results[params.region]", NAMES).dynamic == {"results"}
    assert compile_expression("len(results) > 0", NAMES).dynamic == {"results"}


def test_a_hand_built_expression_is_checked_before_it_runs():
    with pytest.raises(ExpressionError, match="function '__import__' is not allowed"):
        Expression(text="__import__('os')", names=frozenset()).evaluate({})


def test_compiling_twice_gives_equal_expressions():
    assert compile_expression("iteration < 3", NAMES) == compile_expression("iteration < 3", NAMES)


# -- clear definition-time errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment", "column"),
    [
        ("len(results.a.output", "syntax error: '(' was never closed", 4),
        ("results.a.text ==", "syntax error", 18),
        ("", "the expression is empty", None),
        (
            "resutls.a.text",
            "unknown name 'resutls' (allowed names: item, iteration, last, params, results); did you mean 'results'?",
            1,
        ),
        ("1 + os", "unknown name 'os'", 5),
        ("sorted(results)", "function 'sorted' is not allowed (allowed: len, min, max", 1),
        ("lenn(results)", "did you mean 'len'?", 1),
        ("results.a.text.lower()", "method calls are not allowed (.lower(...))", 1),
        ("round(1.25, ndigits=1)", "keyword arguments are not allowed in round(...)", 1),
        ("len", "'len' is a function: call it as len(...)", 1),
        ("'x' * 100000", "always fails", 1),
        ("'x' * 5000 + 'y' * 5001", "result too long", 1),
        ("2 ** 1000", "exponent 1000 is too large (at most 100)", 1),
        ("2 ** 10 ** 6", "too large", 1),
        ("(10 ** 100) ** 50", "number too large", 1),
        ("1 / 0", "division by zero", 1),
        ("'%s' % params", "'%' string formatting is not allowed", 1),
        ("params.region + '%d' % 1", "'%' string formatting is not allowed", 17),
        ("x := 1", "syntax error", None),
        ("(y := 1)", "assignment expressions (:=) are not allowed", 2),
        ("import os", "only a single expression is allowed, not a statement (import)", 1),
        ("results = 1", "not a statement (assign)", None),
        ("lambda: 1", "lambda functions are not allowed", 1),
        ("[k for k in results]", "comprehensions are not allowed", 1),
        ("any(k for k in results)", "generator expressions are not allowed", 4),
        ("f'{results}'", "f-strings are not allowed", 1),
        ("iteration << 2", "shift operator '<<' is not allowed", 1),
        ("~iteration", "operator '~' is not allowed", 1),
        ("b'raw'", "bytes literals are not allowed", 1),
        ("{**params}", "** unpacking is not allowed", 1),
        ("[*results]", "* unpacking is not allowed", 2),
        (
            "results.a.__class__",
            "'.__class__' is not allowed: names starting with '_' or 'func_' are private",
            11,
        ),
        ("results.a.mro", "'.mro' is not allowed after a dot", 11),
        ("-" * 60 + "1", "nested too deeply", None),
        ("iteration + 1 " * 100, f"longer than {MAX_EXPRESSION_LENGTH} characters", None),
    ],
)
def test_bad_expressions_fail_at_definition_time_with_reason_and_column(
    text: str, fragment: str, column: int | None
):
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, NAMES)
    assert fragment in str(info.value)
    if column is not None:
        assert info.value.column == column
        assert str(info.value).endswith(f"(column {column})")
    assert info.value.expression == text


def test_non_string_is_rejected():
    with pytest.raises(ExpressionError, match="must be a string, got int"):
        compile_expression(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "results.missing.text",
            "results has no key 'missing' (keys: 'find_reorders', 'HR.payroll', '__class__')",
        ),
        (
            "results['HR.payroll'].output.skus",
            "cannot read 'skus': results['HR.payroll'].output is None, not a mapping",
        ),
        (
            "results.find_reorders.output.skus[5]",
            "index 5 is out of range: results.find_reorders.output.skus has 2 items",
        ),
        ("results.find_reorders.text + 1", "cannot compute a string + a number"),
        ("item.sku * 10000", "result too long"),
        ("lower(iteration)", "lower() needs a string, got int"),
        ("int(params.region)", "ValueError"),
        ("params.reorder_threshold ** 3000", "exponent 3000 is too large"),
    ],
)
def test_evaluation_errors_are_expression_errors(text: str, fragment: str):
    expression = compile_expression(text, NAMES)
    with pytest.raises(ExpressionError) as info:
        expression.evaluate(DATA)
    assert fragment in str(info.value)


def test_a_name_the_caller_does_not_give_is_an_error():
    with pytest.raises(ExpressionError, match="name 'last' is not available here"):
        compile_expression("last.text", NAMES).evaluate({"results": {}})


# -- no escapes: known attacks, then a grammar fuzzer ------------------------------------------------

ESCAPES = [
    "__import__('os').system('touch /tmp/pwned')",
    "import os",
    "open('/etc/passwd').read()",
    "open('{path}', 'w')",
    "eval('1')",
    "exec('x=1')",
    "compile('1', 'f', 'eval')",
    "getattr(results, '__class__')",
    "globals()",
    "vars()",
    "locals()",
    "type(results)",
    "help()",
    "breakpoint()",
    "input()",
    "().__class__.__bases__[0].__subclasses__()",
    "results.__class__.__mro__",
    "results.__class__.mro()",
    "''.__class__.__base__",
    "len.__self__",
    "lower.__globals__",
    "lower.func_globals",
    "str.__dict__",
    "results.get.__func__",
    "(x for x in []).gi_frame.f_locals",
    "item.gi_frame",
    "item.f_locals",
    "item.tb_frame",
    "item.format",
    "'{0.__class__}'.format(results)",
    "'{.__class__}'.format_map(results)",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "(lambda: 1)()",
    "results.copy()",
    "results.keys()",
    "params.update({'x': 1})",
    "__builtins__",
    "__builtins__['open']",
    "str('x').join",
    "int.from_bytes",
    "float.fromhex('0x1p3')",
    "os.system('id')",
    "sys.modules",
]

# Audit events that mean something was opened, imported, executed or reflected on.
FORBIDDEN_EVENTS = (
    "open", "import", "exec", "os.", "subprocess.", "socket.", "shutil.", "builtins.input", "ctypes.",
    "object.__getattr__", "object.__setattr__", "sys._getframe", "code.__new__", "function.__new__",
)  # fmt: skip
_watching: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _watching or not event.startswith(FORBIDDEN_EVENTS):
        return
    if event == "open" and args and args[0] == SOURCE_NAME:
        return  # CPython itself tries to quote the line of some syntax errors from the "file"
    _watching[-1].append(f"{event} {args[:2]!r}")


sys.addaudithook(_audit)  # cannot be removed; it only records while a test is watching


@contextmanager
def no_side_effects():
    events: list[str] = []
    _watching.append(events)
    try:
        yield
    finally:
        _watching.pop()
    assert events == [], f"expression triggered audit events: {events}"


PLAIN = (type(None), bool, int, float, str)


def is_plain(value: Any) -> bool:
    if isinstance(value, PLAIN):
        return True
    if isinstance(value, (list, tuple, set)):
        return all(is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(is_plain(key) and is_plain(item) for key, item in value.items())
    return False


def attempt(text: str, allowed: frozenset[str] | None = NAMES) -> tuple[str, Any]:
    """``('compile'|'evaluate', error)`` or ``('ok', value)``; any other exception fails the test."""
    with no_side_effects():
        try:
            expression = compile_expression(text, allowed)
        except ExpressionError as exc:
            return "compile", exc
        try:
            return "ok", expression.evaluate(DATA)
        except ExpressionError as exc:
            return "evaluate", exc


@pytest.mark.parametrize("template", ESCAPES)
def test_known_escapes_never_run(template: str, tmp_path: Path):
    target = tmp_path / "written"
    text = template.replace("{path}", str(target))
    for allowed in (NAMES, None):  # also with no name restriction at all
        stage, outcome = attempt(text, allowed)
        assert stage in ("compile", "evaluate"), f"{text!r} evaluated to {outcome!r}"
        assert str(outcome)
    assert not target.exists()


def test_every_known_escape_is_refused_when_the_workflow_is_loaded():
    refused = [text for text in ESCAPES if attempt(text.replace("{path}", "/tmp/x"))[0] == "compile"]
    assert refused == [text for text in ESCAPES]


DANGEROUS_ATTRIBUTES = [
    "__class__", "__globals__", "__subclasses__", "__mro__", "__bases__", "__dict__", "__code__", "__init__",
    "__builtins__", "__import__", "mro", "func_globals", "gi_frame", "f_locals", "tb_frame", "format",
]  # fmt: skip
DANGEROUS_FUNCTIONS = [
    "__import__", "open", "eval", "exec", "getattr", "setattr", "globals", "locals", "vars", "compile", "type",
    "dir", "input", "print", "breakpoint", "object", "memoryview", "iter", "next", "sorted", "map", "filter",
]  # fmt: skip
SAFE_KEYS = ["find_reorders", "output", "skus", "text", "sku", "qty", "region", "approved", "count"]


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> tuple[str, bool]:
    """A random expression and whether it structurally contains something dangerous."""
    leaves = st.one_of(
        st.sampled_from(sorted(NAMES)).map(lambda n: (n, False)),
        st.sampled_from(DANGEROUS_FUNCTIONS + ["os", "sys", "__builtins__"]).map(lambda n: (n, True)),
        st.integers(-1000, 1000).map(lambda n: (str(n), False)),
        st.text(alphabet="ab_.{}%s_", max_size=12).map(lambda s: (repr(s), False)),
        st.sampled_from(["True", "None", "[]", "{}", "()"]).map(lambda s: (s, False)),
    )
    if depth >= 4:
        return draw(leaves)
    choice = draw(st.integers(0, 9))
    if choice <= 2:
        return draw(leaves)
    inner, bad = draw(expressions(depth + 1))
    if choice == 3:
        key = draw(st.sampled_from(SAFE_KEYS + DANGEROUS_ATTRIBUTES))
        return f"({inner}).{key}", bad or key in DANGEROUS_ATTRIBUTES
    if choice == 4:
        key = draw(st.sampled_from(SAFE_KEYS + DANGEROUS_ATTRIBUTES))
        return f"({inner})[{key!r}]", bad  # a string key is data, never an attribute
    if choice == 5:
        function = draw(st.sampled_from(list(FUNCTIONS) + DANGEROUS_FUNCTIONS))
        return f"{function}({inner})", bad or function not in FUNCTIONS
    if choice == 6:
        other, other_bad = draw(expressions(depth + 1))
        operator = draw(
            st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "==", "<", "in", "and", "or", "<<", "&"])
        )
        return f"({inner}) {operator} ({other})", bad or other_bad or operator in ("<<", "&")
    if choice == 7:
        method = draw(st.sampled_from(["lower", "keys", "get", "copy", "format", "__reduce__", "mro"]))
        return f"({inner}).{method}()", True
    if choice == 8:
        wrapper = draw(
            st.sampled_from(["lambda: {}", "[x for x in {}]", "(x for x in {})", "f'{{{}}}'", "{{**{}}}"])
        )
        return wrapper.format(inner), True
    return f"[{inner}, {inner}][-1]", bad


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions())
def test_fuzzed_expressions_never_escape(generated: tuple[str, bool]):
    text, dangerous = generated
    stage, outcome = attempt(text)
    if dangerous:
        assert stage == "compile", f"{text!r} should be refused at load time, got {stage}: {outcome!r}"
    if stage == "ok":
        assert is_plain(outcome), f"{text!r} produced {type(outcome).__name__}"
    else:
        assert isinstance(outcome, ExpressionError)
        assert str(outcome)


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=60))
def test_arbitrary_text_only_ever_raises_expression_error(text: str):
    stage, outcome = attempt(text)
    assert stage in ("compile", "evaluate", "ok")
    assert stage != "ok" or is_plain(outcome)
