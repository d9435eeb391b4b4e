"""Defence in depth: the tool registry never exposes code from denied modules, even from Python.

Python DAG authors are trusted with their own modules, so ``ToolRegistry`` does not apply the YAML
allow-list; but ``builtins``, ``os``, ``subprocess``, ``pickle``, Airflow and the like are refused
whoever names them, before the import and again on the callable's own ``__module__``.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_agent_provider.llm.tools import Tool, ToolImportError, ToolRegistry, import_callable

ATTACKS = [
    "os.system",
    "subprocess.getoutput",
    "builtins.exec",
    "pickle.loads",
    "shutil.rmtree",
    "posix.system",
]


@pytest.mark.parametrize("path", ATTACKS)
def test_denied_modules_are_never_tools(path):
    with pytest.raises(ToolImportError, match="is refused: module .* may never provide tools"):
        ToolRegistry.from_mapping({"t": path})


@pytest.mark.parametrize(
    "path",
    [
        "airflow.sdk.Variable.get",
        "airflow_agent_provider.hooks.llm.LLMHook",
        "_pickle.loads",
        "importlib:import_module",
    ],
)
def test_airflow_this_provider_and_private_c_modules_are_denied(path):
    with pytest.raises(ToolImportError, match="is refused"):
        import_callable(path)


def test_denied_module_is_not_imported(tmp_path: Path, monkeypatch):
    # "runpy" is denied and never imported by this check; a submodule of a denied package neither.
    monkeypatch.delitem(sys.modules, "runpy", raising=False)
    with pytest.raises(ToolImportError):
        import_callable("runpy.run_path")
    assert "runpy" not in sys.modules


def test_dunder_paths_are_refused():
    with pytest.raises(ToolImportError, match="dunder"):
        import_callable("tests.llm.sample_tools:add.__globals__")


@pytest.fixture
def reexporting_module(tmp_path: Path, monkeypatch):
    """A trusted-looking module that hands out os.system under its own name."""
    (tmp_path / "reexport_tools_xyz.py").write_text(
        textwrap.dedent(
            """
            import functools, os, subprocess
            from os import system
            getoutput = subprocess.getoutput
            run_id = functools.partial(os.system, "id")
            exec_code = exec

            def fine(text: str) -> str:
                \"\"\"A real tool.\"\"\"
                return text.upper()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "reexport_tools_xyz"
    sys.modules.pop("reexport_tools_xyz", None)


@pytest.mark.parametrize("attribute", ["system", "getoutput", "run_id", "exec_code"])
def test_a_reexported_denied_function_is_refused(reexporting_module, attribute):
    with pytest.raises(ToolImportError, match="is refused: it is defined in '(posix|subprocess|builtins)'"):
        ToolRegistry.from_mapping({"t": f"{reexporting_module}.{attribute}"})


def test_a_real_function_of_the_same_module_is_a_tool(reexporting_module):
    registry = ToolRegistry.from_mapping({"fine": f"{reexporting_module}.fine"})
    assert [spec.name for spec in registry.specs] == ["fine"]


@pytest.mark.parametrize("func", [os.system, subprocess.getoutput, print, functools.partial(os.system, "id")])
def test_tool_objects_built_in_python_refuse_denied_callables(func):
    with pytest.raises(ToolImportError, match="is refused"):
        Tool("t", func)


def test_allowed_python_tools_still_work():
    registry = ToolRegistry.from_mapping({"add": "tests.llm.sample_tools.add"})
    assert registry.tools["add"].run({"a": 2, "b": 3}) == ("5", True)
