"""Issue 13 (items 1, 2 and 6), reproduced: what a workflow file author can no longer do.

* name code outside the platform team's allow-list (``[agent_provider] allowed_tool_modules``), or
  ``os.system`` & co. at all; a module outside the list is not even imported;
* read Airflow's full template context (``conn``, ``var``, ``ti``, ``macros``...) from a prompt;
* make the loader expand, read or parse without bound, or take the folder's other workflows down.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from airflow_agent_provider.config import (
    ALLOWED_TOOL_MODULES_OPTION,
    DEFAULT_ALLOWED_TOOL_MODULES,
    MAX_WORKFLOW_FILE_BYTES_OPTION,
    env_var,
)
from airflow_agent_provider.definitions import (
    MAX_PROMPT_CHARS,
    MAX_PROMPT_TEMPLATE_CHARS,
    PROMPT_NAMES,
    WorkflowDefinitionError,
    load_workflow,
    load_workflows,
    parse_workflow,
)

SETTING = "[agent_provider] allowed_tool_modules (AIRFLOW__AGENT_PROVIDER__ALLOWED_TOOL_MODULES)"
GOOD = """\
name: good_neighbour
defaults: {model: gpt-5-mini}
tools:
  get_stock_level: airflow_agent_provider.examples.erp_tools.get_stock_level
modules:
  Inventory:
    agents:
      - {name: stock, prompt: "Stock for {{ ds }}.", tools: [get_stock_level]}
"""


def _with_tool(path: str, name: str = "wf") -> str:
    return f"""\
name: {name}
defaults: {{model: gpt-5-mini}}
tools:
  t: {path}
modules:
  Ops:
    agents:
      - {{name: a, prompt: "Go.", tools: [t]}}
"""


def _problems(text: str, **kwargs) -> list[str]:
    with pytest.raises(WorkflowDefinitionError) as info:
        parse_workflow(text, **kwargs)
    return [str(problem) for problem in info.value.problems]


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch):
    monkeypatch.delenv(env_var(ALLOWED_TOOL_MODULES_OPTION), raising=False)
    monkeypatch.delenv(env_var(MAX_WORKFLOW_FILE_BYTES_OPTION), raising=False)


@pytest.fixture
def code_dir(tmp_path: Path, monkeypatch):
    """A folder on sys.path for modules written by a test; they are forgotten afterwards."""
    folder = tmp_path / "code"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        sys.modules.pop(name, None)


def _marker_module(code_dir: Path, name: str) -> Path:
    """A module that writes a marker file when imported and defines a tool function."""
    marker = code_dir / f"{name}.imported"
    (code_dir / f"{name}.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            Path({str(marker)!r}).write_text("imported")

            def run(text: str) -> str:
                \"\"\"Echo.\"\"\"
                return text
            """
        )
    )
    return marker


# --- 13.1: tools and schemas from vetted modules only --------------------------------------------


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("os.system", "os"),
        ("subprocess.getoutput", "subprocess"),
        ("builtins.exec", "builtins"),
        ("pickle.loads", "pickle"),
        ("shutil.rmtree", "shutil"),
    ],
)
def test_the_reported_attack_tools_are_definition_errors_naming_the_setting(path, module):
    (problem,) = _problems(_with_tool(path))
    assert problem.startswith(f"tools.t: module {module!r} may never provide tools")
    assert SETTING in problem
    assert "cannot allow it" in problem


@pytest.mark.parametrize(
    "path", ["os.system", "subprocess.getoutput", "builtins.exec", "pickle.loads", "shutil.rmtree"]
)
def test_denied_modules_stay_denied_even_when_the_allow_list_names_them(path):
    allowed = ["os", "subprocess", "builtins", "pickle", "shutil", "airflow", "airflow_agent_provider"]
    (problem,) = _problems(_with_tool(path), allowed_modules=allowed)
    assert "may never provide tools" in problem


def test_allowing_the_provider_allows_its_examples_only():
    allowed = ["airflow_agent_provider"]
    parse_workflow(
        _with_tool("airflow_agent_provider.examples.erp_tools.get_stock_level"), allowed_modules=allowed
    )
    (problem,) = _problems(
        _with_tool("airflow_agent_provider.definitions.loader.load_workflow"), allowed_modules=allowed
    )
    assert "module 'airflow_agent_provider.definitions.loader' may never provide tools" in problem


def test_a_module_outside_the_allow_list_is_not_even_imported(code_dir: Path):
    marker = _marker_module(code_dir, "outside_tools_xyz")
    (problem,) = _problems(_with_tool("outside_tools_xyz.run"))
    assert "module 'outside_tools_xyz' is not allowed for tools" in problem
    assert SETTING in problem
    assert f"allows {DEFAULT_ALLOWED_TOOL_MODULES}" in problem
    assert not marker.exists()
    assert "outside_tools_xyz" not in sys.modules


def test_an_output_schema_outside_the_allow_list_is_not_even_imported(code_dir: Path):
    marker = _marker_module(code_dir, "outside_schemas_xyz")
    text = """\
name: wf
defaults: {model: gpt-5-mini}
modules:
  Ops:
    agents:
      - {name: a, prompt: "Go.", output_schema: outside_schemas_xyz.Answer}
"""
    (problem,) = _problems(text)
    assert "module 'outside_schemas_xyz' is not allowed for output schemas" in problem
    assert SETTING in problem
    assert not marker.exists()


def test_the_same_module_is_imported_once_it_is_allowed(code_dir: Path):
    # The control for the two tests above: the marker does appear when the import happens.
    marker = _marker_module(code_dir, "vetted_tools_xyz")
    parse_workflow(_with_tool("vetted_tools_xyz.run"), allowed_modules=["vetted_tools_xyz"])
    assert marker.exists()


def test_prefixes_match_on_module_boundaries(code_dir: Path):
    marker = _marker_module(code_dir, "my_tools_xyz_evil")
    (problem,) = _problems(_with_tool("my_tools_xyz_evil.run"), allowed_modules=["my_tools_xyz"])
    assert "module 'my_tools_xyz_evil' is not allowed" in problem
    assert not marker.exists()


def test_a_reexport_under_an_allowed_prefix_is_refused(code_dir: Path):
    (code_dir / "reexports_xyz.py").write_text(
        "import functools, os, subprocess\nfrom os import system\nfrom pickle import loads\n"
        "getoutput = subprocess.getoutput\nrun_id = functools.partial(os.system, 'id')\n"
    )
    allowed = ["reexports_xyz"]
    for attribute in ("system", "loads"):  # os.system, pickle.loads: builtins, not Python functions
        (problem,) = _problems(_with_tool(f"reexports_xyz.{attribute}"), allowed_modules=allowed)
        assert "is not a Python function" in problem, problem
    (problem,) = _problems(_with_tool("reexports_xyz.getoutput"), allowed_modules=allowed)
    assert "tool 'reexports_xyz.getoutput' is refused: it is defined in 'subprocess'" in problem
    (problem,) = _problems(_with_tool("reexports_xyz.run_id"), allowed_modules=allowed)
    assert "is not a Python function (partial)" in problem


def test_a_function_from_another_module_that_is_not_allowed_is_refused(code_dir: Path):
    (code_dir / "helpers_xyz.py").write_text("def run(text: str) -> str:\n    return text\n")
    (code_dir / "facade_xyz.py").write_text("from helpers_xyz import run\n")
    (problem,) = _problems(_with_tool("facade_xyz.run"), allowed_modules=["facade_xyz"])
    assert "it is defined in 'helpers_xyz', which is not an allowed module" in problem
    assert SETTING in problem
    parse_workflow(_with_tool("facade_xyz.run"), allowed_modules=["facade_xyz", "helpers_xyz"])


def test_a_schema_model_reexported_from_a_denied_module_is_refused(code_dir: Path):
    (code_dir / "schemas_xyz.py").write_text(
        "from airflow_agent_provider.definitions.models import RetrySpec\n"
    )
    text = """\
name: wf
defaults: {model: gpt-5-mini}
modules:
  Ops:
    agents:
      - {name: a, prompt: "Go.", output_schema: schemas_xyz.RetrySpec}
"""
    (problem,) = _problems(text, allowed_modules=["schemas_xyz"])
    assert "is refused: it is defined in 'airflow_agent_provider.definitions.models'" in problem


def test_the_setting_comes_from_the_environment(monkeypatch, code_dir: Path):
    _marker_module(code_dir, "env_tools_xyz")
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__ALLOWED_TOOL_MODULES", " env_tools_xyz , other.pkg ")
    parse_workflow(_with_tool("env_tools_xyz.run"))
    (problem,) = _problems(_with_tool("airflow_agent_provider.examples.erp_tools.get_stock_level"))
    assert "allows env_tools_xyz, other.pkg" in problem


def test_an_empty_setting_allows_nothing(monkeypatch):
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__ALLOWED_TOOL_MODULES", "")
    (problem,) = _problems(_with_tool("airflow_agent_provider.examples.erp_tools.get_stock_level"))
    assert "allows no module at all (it is empty)" in problem


def test_an_invalid_setting_is_a_definition_error_naming_it(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__ALLOWED_TOOL_MODULES", "my_tools.*")
    (problem,) = _problems(_with_tool("airflow_agent_provider.examples.erp_tools.get_stock_level"))
    assert f"{SETTING} has an invalid entry 'my_tools.*'" in problem
    # A workflow that names no code does not depend on the setting.
    (tmp_path / "plain.yaml").write_text(
        "name: plain\ndefaults: {model: m}\nmodules: {A: {agents: [{name: a, prompt: p}]}}\n"
    )
    (tmp_path / "tools.yaml").write_text(
        _with_tool("airflow_agent_provider.examples.erp_tools.get_stock_level", "tools")
    )
    workflows, errors = load_workflows(tmp_path)
    assert [w.name for w in workflows] == ["plain"]
    assert len(errors) == 1


# --- 13.2: a narrow template context --------------------------------------------------------------


def _prompt(prompt: str, **agent) -> str:
    extra = "".join(f", {key}: {value!r}" for key, value in agent.items())
    return f"""\
name: wf
defaults: {{model: gpt-5-mini}}
modules:
  Finance:
    agents:
      - {{name: a, prompt: {prompt!r}{extra}}}
"""


@pytest.mark.parametrize(
    ("prompt", "name"),
    [
        ("{{ conn.agent_openai_default.password }}", "conn"),
        ("{{ var.value.x }}", "var"),
        ("{{ var.json.settings }}", "var"),
        ("{{ ti.xcom_pull(task_ids='other') }}", "ti"),
        ("{{ task_instance.xcom_pull('x') }}", "task_instance"),
        ("{{ macros.datetime.now() }}", "macros"),
        ("{{ dag_run.conf }}", "dag_run"),
        ("{{ dag.fileloc }}", "dag"),
        ("{% for c in [conn] %}{{ c }}{% endfor %}", "conn"),
    ],
)
def test_airflow_context_names_are_definition_errors(prompt, name):
    (problem,) = _problems(_prompt(prompt))
    assert problem.startswith(
        f"modules.Finance.agents[0].prompt: prompt uses {name!r}, which a workflow template cannot read"
    )
    assert (
        "allowed names: dag_id, ds, item, iteration, last, logical_date, params, results, run_id, upstream_text"
        in problem
    )


@pytest.mark.parametrize("field", ["system_prompt", "model", "connection"])
def test_every_templated_field_is_checked(field):
    (problem,) = _problems(_prompt("Hi.", **{field: "{{ conn.x.password }}"}))
    assert problem.startswith(f"modules.Finance.agents[0].{field}: {field} uses 'conn'")


def test_a_bad_default_template_is_reported_once_at_defaults():
    text = """\
name: wf
defaults: {model: gpt-5-mini, system_prompt: "{{ var.value.company }}"}
modules:
  Finance:
    agents: [{name: a, prompt: A}, {name: b, prompt: B}]
"""
    (problem,) = _problems(text)
    assert problem.startswith("defaults.system_prompt: system_prompt uses 'var'")


@pytest.mark.parametrize(
    ("prompt", "attribute"),
    [
        ("{{ ds.__class__ }}", "__class__"),
        ("{{ upstream_text.__class__.__mro__[1].__subclasses__() }}", "__subclasses__"),
        ("{{ results.x.__globals__ }}", "__globals__"),
        ("{{ ''.__class__.mro() }}", "mro"),
        ("{{ run_id['__class__'] }}", "__class__"),
        ("{{ ds | attr('__class__') }}", "__class__"),
        ("{{ [ds] | map(attribute='__class__.__name__') | list }}", "__class__"),
        ("{{ lipsum.__globals__ }}", "__globals__"),
        ("{{ cycler.__init__.__globals__.os }}", "__init__"),
    ],
)
def test_attributes_reaching_python_internals_are_definition_errors(prompt, attribute):
    problems = _problems(_prompt(prompt))
    assert any(f"reaches the attribute {attribute!r}" in p for p in problems), problems


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("{% include 'secrets.txt' %}", "{% include %}"),
        ("{% import 'macros.j2' as m %}", "{% import %}"),
        ("{% from 'm.j2' import x %}", "{% from ... import %}"),
        ("{% extends 'base.j2' %}", "{% extends %}"),
        ("{{ 9 ** 9 ** 9 }}", "power operator"),
        ("{{ 'lol' * 999999999 }}", "a number above 100,000"),
        ("{{ ds | center(999999999) }}", "a number above 100,000"),
        ("{{ '%999999999s' | format(ds) }}", "a number above 100,000"),
        ("{{ '{:>999999999}'.format(ds) }}", "a number above 100,000"),
        ("{{ range(5000000) | list }}", "a number above 100,000"),
        ("{{ 'lol' * 99999 * 99999 }}", "a number above 100,000"),
        ("{{ ('ab' * 9000) * (9000 * 9000) }}", "a number above 100,000"),
    ],
)
def test_loading_templates_and_unbounded_arithmetic_are_refused(prompt, message):
    problems = _problems(_prompt(prompt))
    assert any(message in p for p in problems), problems


def test_validation_never_builds_what_a_template_would_build(monkeypatch):
    """Jinja's code generator folds constants; a refused size must be refused before it runs."""
    import jinja2.compiler

    def no_codegen(*args, **kwargs):
        raise AssertionError("the code generator ran on a template refused for its size")

    monkeypatch.setattr(jinja2.compiler.CodeGenerator, "visit_Template", no_codegen)
    problems = _problems(_prompt("{{ 'lol' * 999999999 }}"))
    assert any("a number above 100,000" in p for p in problems), problems


def test_the_narrow_context_and_jinja_itself_are_accepted():
    prompt = (
        "{{ ds }} {{ logical_date }} {{ run_id }} {{ dag_id }} {{ upstream_text }} {{ params }} "
        "{% set n = namespace(total=0) %}{% for i in range(3) %}{{ loop.index }}{% endfor %}"
        "{{ 'x' | upper }} {{ [1, 2] | join(', ') }} {{ dict(a=1) | tojson }} {{ '%.2f' | format(1.5) }}"
        "{% if results | length > 1000000 %}above a million{% endif %} {{ '-' * 40 }} Invoices above 10,000,000 EUR."
    )
    parse_workflow(_prompt(prompt))
    assert {"results", "upstream_text", "params", "item", "last", "iteration"} <= PROMPT_NAMES


def test_a_deeply_nested_template_is_one_clear_problem():
    (problem,) = _problems(_prompt("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}"))
    assert "modules.Finance.agents[0].prompt: invalid Jinja template" in problem


# --- 13.6: bounded input, confined to its file ----------------------------------------------------


def _laughs(levels: int, where: str) -> str:
    """Nested anchors, each level nine aliases of the previous: 9**levels nodes from a few hundred bytes."""
    lines = ['          l0: &l0 {type: string, description: "lol lol lol lol lol lol lol lol"}']
    for i in range(1, levels + 1):
        lines.append(
            f"          l{i}: &l{i} {{type: object, properties: {{"
            + ", ".join(f"p{j}: *l{i - 1}" for j in range(9))
            + "}}"
        )
    body = "\n".join(lines)
    return f"""\
name: {where}
defaults: {{model: gpt-5-mini}}
modules:
  HR:
    agents:
      - name: a
        prompt: Answer.
        output_schema:
          type: object
          $defs:
{textwrap.indent(body, "  ")}
"""


def test_the_795_byte_schema_that_expanded_to_94_mb_is_stopped_while_composing():
    text = _laughs(7, "schema_bomb")  # 9**7 = 4.8 million schemas, written in about a kilobyte
    assert len(text.encode()) < 1200
    (problem,) = _problems(text)
    assert "expands to more than 100,000 YAML nodes" in problem


def test_the_720_byte_file_that_built_a_10_mb_dag_is_stopped_while_composing():
    path = Path(__file__).parent / "bad" / "yaml_billion_laughs.yaml"
    assert path.stat().st_size <= 720
    with pytest.raises(WorkflowDefinitionError) as info:
        load_workflow(path)
    assert len(info.value.problems) == 1
    assert "more than 100,000 YAML nodes" in str(info.value)


def test_an_alias_of_a_long_string_counts_its_characters():
    lines = [
        "name: wf",
        "defaults: {model: gpt-5-mini}",
        f"x: &big '{'a' * 60_000}'",
        "modules:",
        "  A:",
        "    agents:",
    ]
    lines += [f"      - {{name: a{i}, prompt: *big}}" for i in range(40)]
    (problem,) = _problems("\n".join(lines) + "\n")
    assert "values expand to more than 2,097,152 characters at alias *big" in problem


def test_a_recursive_alias_is_refused():
    (problem,) = _problems("name: wf\nmodules: &m {A: {agents: [*m]}}\n")
    assert "refers to a node that contains it" in problem


def test_a_200_mib_prompt_file_is_refused_before_it_is_read(tmp_path: Path):
    path = tmp_path / "huge.yaml"
    head = b"name: huge\ndefaults: {model: gpt-5-mini}\nmodules:\n  A:\n    agents:\n      - name: a\n        prompt: '"
    with path.open("wb") as handle:
        handle.write(head)
        handle.truncate(200 * 1024 * 1024)  # sparse: the size is real, the disk is not used
    with pytest.raises(WorkflowDefinitionError) as info:
        load_workflow(path)
    (problem,) = info.value.problems
    assert str(problem) == (
        "(file): the file is 209,715,200 bytes, more than the 1,048,576 a workflow file may have "
        "([agent_provider] max_workflow_file_bytes (AIRFLOW__AGENT_PROVIDER__MAX_WORKFLOW_FILE_BYTES)); it was not parsed"
    )


def test_the_file_cap_is_configurable(tmp_path: Path, monkeypatch):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    load_workflow(path)
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__MAX_WORKFLOW_FILE_BYTES", "100")
    with pytest.raises(WorkflowDefinitionError, match="more than the 100 a workflow file may have"):
        load_workflow(path)
    with pytest.raises(WorkflowDefinitionError, match="more than the 100 a workflow file may have"):
        parse_workflow(GOOD)
    monkeypatch.setenv("AIRFLOW__AGENT_PROVIDER__MAX_WORKFLOW_FILE_BYTES", "lots")
    with pytest.raises(
        WorkflowDefinitionError,
        match=r"max_workflow_file_bytes \(AIRFLOW__AGENT_PROVIDER__MAX_WORKFLOW_FILE_BYTES\) must be",
    ):
        load_workflow(path)


def test_a_prompt_template_has_a_length_cap():
    (problem,) = _problems(_prompt("x" * (MAX_PROMPT_TEMPLATE_CHARS + 1)))
    assert problem.startswith(
        f"modules.Finance.agents[0].prompt: is too long (at most {MAX_PROMPT_TEMPLATE_CHARS} characters)"
    )
    assert (
        MAX_PROMPT_CHARS >= 10 * MAX_PROMPT_TEMPLATE_CHARS
    )  # the render-time cap leaves room for upstream results


def test_an_oversized_inline_schema_is_one_clear_error():
    (problem,) = _problems(_laughs(4, "big_schema"))
    assert problem.startswith(
        "modules.HR.agents[0].output_schema: the schema is larger than 100,000 characters as JSON"
    )


def _bad_files(folder: Path, code_dir: Path) -> dict[str, str]:
    """File name -> the fragment its single error must contain."""
    (code_dir / "raises_system_exit_xyz.py").write_text("import sys\nsys.exit(3)\n")
    (code_dir / "raises_recursion_xyz.py").write_text("def f():\n    return f()\nf()\n")
    (code_dir / "raises_memory_xyz.py").write_text("raise MemoryError('pretend the machine ran out')\n")
    (code_dir / "raises_weird_xyz.py").write_text(
        "class Weird(Exception):\n    def __str__(self):\n        raise RuntimeError('no message either')\nraise Weird()\n"
    )
    (code_dir / "raises_base_xyz.py").write_text(
        "class Odd(BaseException):\n    pass\nraise Odd('not even an Exception')\n"
    )
    files = {
        "exit.yaml": (_with_tool("raises_system_exit_xyz.run", "exit"), "SystemExit: 3"),
        "recursion.yaml": (_with_tool("raises_recursion_xyz.run", "recursion"), "RecursionError"),
        "memory.yaml": (_with_tool("raises_memory_xyz.run", "memory"), "MemoryError: pretend"),
        "weird.yaml": (
            _with_tool("raises_weird_xyz.run", "weird"),
            "Weird: (the exception's message cannot be shown)",
        ),
        "base.yaml": (_with_tool("raises_base_xyz.run", "base"), "Odd: not even an Exception"),
        "laughs.yaml": (_laughs(8, "laughs"), "more than 100,000 YAML nodes"),
        "deep.yaml": (
            "name: deep\nx: " + "[" * 5000 + "]" * 5000 + "\n",
            "nesting",
        ),  # libyaml stops flow nesting at 1000 itself
        "schema.yaml": (_laughs(4, "schema"), "the schema is larger than 100,000 characters"),
        "prompt.yaml": (
            _prompt("x" * (MAX_PROMPT_TEMPLATE_CHARS + 1)).replace("name: wf", "name: prompt"),
            "is too long",
        ),
        "context.yaml": (
            _prompt("{{ conn.x.password }}").replace("name: wf", "name: context"),
            "prompt uses 'conn'",
        ),
        "bigint.yaml": (
            "name: bigint\nmax_parallel_agents: " + "9" * 5000 + "\n",
            "cannot read a YAML value",
        ),
    }
    for name, (text, _) in files.items():
        (folder / name).write_text(text)
    (folder / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (folder / "oversized.yaml").write_text(GOOD.replace("good_neighbour", "oversized") + "#" * (1024 * 1024))
    fragments = {name: fragment for name, (_, fragment) in files.items()}
    fragments["latin1.yaml"] = "it is not UTF-8 text"
    fragments["oversized.yaml"] = "more than the 1,048,576 a workflow file may have"
    return fragments


def test_each_bad_file_gives_one_clear_error_and_the_folder_still_loads(tmp_path: Path, code_dir: Path):
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "a_good.yaml").write_text(GOOD)
    (folder / "z_good.yaml").write_text(GOOD.replace("good_neighbour", "other_neighbour"))
    # Every allowed module of the test (the raising ones included) may be imported: the error must come
    # from what the import does, not from the allow-list.
    allowed = [
        DEFAULT_ALLOWED_TOOL_MODULES,
        *(f"raises_{kind}_xyz" for kind in ("system_exit", "recursion", "memory", "weird", "base")),
    ]
    expected = _bad_files(folder, code_dir)
    workflows, errors = load_workflows(folder, allowed_modules=allowed)
    assert [w.name for w in workflows] == ["good_neighbour", "other_neighbour"]
    by_file = {Path(error.path).name: error for error in errors}
    assert set(by_file) == set(expected)
    for name, fragment in expected.items():
        error = by_file[name]
        assert len(error.problems) == 1, str(error)
        assert fragment in str(error), str(error)
        assert len(str(error)) < 2000  # bounded: no 200 MiB or 10 MB message either


@pytest.mark.parametrize("raised", ["KeyboardInterrupt()", "AirflowTaskTimeout('DagBag import timeout')"])
def test_interruptions_are_not_swallowed(tmp_path: Path, code_dir: Path, raised):
    # Ctrl-C and Airflow's DagBag import timeout (a BaseException raised wherever the alarm fires) must
    # still stop the DAG file's import instead of becoming one workflow's definition error.
    from airflow.sdk.exceptions import AirflowTaskTimeout

    (code_dir / "interrupts_xyz.py").write_text(
        f"from airflow.sdk.exceptions import AirflowTaskTimeout\nraise {raised}\n"
    )
    (tmp_path / "wf.yaml").write_text(_with_tool("interrupts_xyz.run"))
    with pytest.raises((KeyboardInterrupt, AirflowTaskTimeout)):
        load_workflows(tmp_path, allowed_modules=["interrupts_xyz"])


def test_validation_and_rendering_agree_on_the_prompt_names():
    # The operator renders workflow prompts with exactly the names validation lets through.
    from airflow_agent_provider.operators.prompt_context import WORKFLOW_NAMES

    assert set(WORKFLOW_NAMES) == PROMPT_NAMES
