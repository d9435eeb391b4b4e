"""Parsing only what Airflow asks for, importing nothing heavy, and bounded import errors.

Airflow parses the DAG file again at every task start, with the wanted DAG id in the parsing context
(``_AIRFLOW_PARSING_CONTEXT_DAG_ID``). The subprocess tests build a real ``DagBag`` of a dags folder
holding ``erp_workflows.py`` and several workflows in a fresh interpreter, so that what is imported
by the parse is exactly what a task start pays.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_agent_provider.factory.loader import (
    INVALID_PLACEHOLDER_DAG_ID,
    MAX_MESSAGE_CHARS,
    MAX_PROBLEMS_PER_FILE,
    declared_name,
    import_error_message,
)
from tests.fixtures.python_json import run_python_json

REPO = Path(__file__).parents[2]

#: Imported by a model call, never by building a DAG.
HEAVY = ("openai", "anthropic", "genai_prices", "redis")

_PARSE_SCRIPT = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag  # Airflow's own imports are the baseline
# Airflow itself imports jsonschema (airflow.configuration); forget it, so that a re-import by the
# DAG file shows up.
for name in [m for m in sys.modules if m == "jsonschema" or m.startswith("jsonschema.")]:
    del sys.modules[name]
bag = DagBag(dag_folder=sys.argv[1])
heavy = ("openai", "anthropic", "genai_prices", "redis", "jsonschema")
print(json.dumps({
    "dag_ids": sorted(bag.dag_ids),
    "import_errors": bag.import_errors,
    "heavy": [m for m in heavy if m in sys.modules],
    "stores": sorted(m for m in sys.modules if m.startswith("airflow_agent_provider.stores")),
    "tasks": {dag_id: len(bag.dags[dag_id].tasks) for dag_id in bag.dag_ids},
}))
"""


def _workflow(name: str, agents: int = 3, extra: str = "") -> str:
    lines = [
        f"name: {name}",
        "schedule: null",
        extra,
        "defaults: {provider: openai, model: gpt-5-mini}",
        "modules:",
        "  M:",
        "    agents:",
    ]
    for index in range(agents):
        lines += [f"      - name: a{index}", f"        prompt: say {index}"]
    return "\n".join(line for line in lines if line) + "\n"


@pytest.fixture(scope="module")
def dags_folder(tmp_path_factory) -> Path:
    """The DAG file and: quickstart, a workflow whose file is named differently, two files
    declaring one name (the first broken), a quoted name, a flow-style file and a broken file."""
    folder = tmp_path_factory.mktemp("parse") / "dags"
    workflows = folder / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(REPO / "dags" / "erp_workflows.py", folder / "erp_workflows.py")
    shutil.copy(REPO / "dags" / "workflows" / "quickstart.yaml", workflows / "quickstart.yaml")
    (workflows / "zz_other_file_name.yaml").write_text(_workflow("renamed", agents=4))
    (workflows / "a_twin.yaml").write_text(_workflow("twin").replace("max_tokens", "x") + "bogus: 1\n")
    (workflows / "b_twin.yaml").write_text(_workflow("twin", agents=2))
    (workflows / "quoted.yaml").write_text(_workflow("x").replace("name: x", 'name: "quoted"   # a comment'))
    (workflows / "flow.yaml").write_text(
        "{name: flow, schedule: null, defaults: {provider: openai, model: gpt-5-mini},"
        " modules: {M: {agents: [{name: a, prompt: hi}]}}}\n"
    )
    (workflows / "broken.yaml").write_text(
        _workflow("broken").replace("prompt: say 0", "prompt: say 0\n        max_tokens: lots")
    )
    return folder


def _parse(folder: Path, dag_id: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_AIRFLOW_PARSING_CONTEXT")}
    if dag_id is not None:
        env["_AIRFLOW_PARSING_CONTEXT_DAG_ID"] = dag_id
        env["_AIRFLOW_PARSING_CONTEXT_TASK_ID"] = "M.a0"
    result: dict = run_python_json(_PARSE_SCRIPT, str(folder), env=env, timeout=240)
    return result


@pytest.mark.parametrize(
    ("dag_id", "tasks"),
    [
        ("renamed", 5),  # file zz_other_file_name.yaml: 4 agents + the result task
        ("twin", 3),  # a_twin.yaml is broken, so b_twin.yaml defines it, as in the dag-processor
        ("quoted", 4),
        ("flow", 2),  # the name is read through the YAML, not a name line
    ],
)
def test_with_a_parsing_context_only_that_workflow_is_built_and_nothing_heavy_is_imported(
    dags_folder, dag_id, tasks
):
    parsed = _parse(dags_folder, dag_id)
    assert parsed["dag_ids"] == [dag_id]
    assert parsed["tasks"] == {dag_id: tasks}
    # The broken files are the dag-processor's to report, not every task start's.
    assert parsed["import_errors"] == {}
    assert [m for m in parsed["heavy"] if m in HEAVY] == []
    assert parsed["stores"] == []  # the shared store is opened by a call, not by a parse


def test_one_dag_parse_does_not_import_jsonschema(dags_folder):
    """Airflow imports jsonschema itself, so this checks that our code does not need it to build a DAG."""
    assert "jsonschema" not in _parse(dags_folder, "renamed")["heavy"]


def test_a_dag_id_that_is_not_ours_builds_nothing(dags_folder):
    for dag_id in ("someone_elses_dag", INVALID_PLACEHOLDER_DAG_ID):
        parsed = _parse(dags_folder, dag_id)
        assert parsed["dag_ids"] == []
        assert parsed["import_errors"] == {}
        assert [m for m in parsed["heavy"] if m in HEAVY] == []


def test_a_broken_requested_workflow_is_reported_in_the_task_parse(dags_folder):
    parsed = _parse(dags_folder, "broken")
    assert parsed["dag_ids"] == []
    (message,) = parsed["import_errors"].values()
    assert "broken.yaml" in message
    assert "max_tokens" in message
    assert "a_twin.yaml" not in message  # other files are not looked at


def test_without_a_parsing_context_every_workflow_and_every_broken_file_appear(dags_folder):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder))
    assert set(bag.dag_ids) == {"quickstart", "renamed", "twin", "quoted", "flow"}
    assert INVALID_PLACEHOLDER_DAG_ID not in bag.dag_ids
    ((path, message),) = bag.import_errors.items()
    assert path.endswith("erp_workflows.py")
    assert "broken.yaml" in message
    assert "max_tokens" in message
    assert "a_twin.yaml" in message
    assert "bogus" in message


def test_the_name_line_is_read_like_yaml_would(tmp_path):
    cases = {
        "name: plain\n": "plain",
        "# header\ndescription: |\n  name: not_this\nname: 'single'  # c\n": "single",
        "name: &anchor anchored\n": "anchored",  # not a plain value: read through the YAML
        "name:\n  folded\n": "folded",
        "modules: {}\n": None,
        "name: [not, a, name]\n": None,
        "name: a\nname: b\n": None,  # duplicate key: the file is invalid, whatever it declares
    }
    for index, (text, expected) in enumerate(cases.items()):
        path = tmp_path / f"w{index}.yaml"
        path.write_text(text)
        assert declared_name(path) == expected, text


# -------------------------------------------------------------------------------------------------
# Short import errors
# -------------------------------------------------------------------------------------------------


def _many_problems(name: str, agents: int) -> str:
    # Every agent has an unknown field: one problem per agent.
    return _workflow(name, agents=agents).replace(
        "        prompt: say", "        modle: x\n        prompt: say"
    )


def test_a_long_problem_list_is_shortened_in_the_import_error_and_complete_in_validate(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path / "dags"
    (folder / "workflows").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "erp_workflows.py", folder / "erp_workflows.py")
    (folder / "workflows" / "many.yaml").write_text(_many_problems("many", 500))
    bag = DagBag(dag_folder=str(folder))
    ((_, message),) = bag.import_errors.items()
    assert "many.yaml: 500 problems in workflow definition" in message
    assert message.count("unknown field 'modle'") == MAX_PROBLEMS_PER_FILE
    assert f"… and {500 - MAX_PROBLEMS_PER_FILE} more problems; run `airflow-agents validate" in message
    assert len(message) < MAX_MESSAGE_CHARS + 4000  # Airflow adds its traceback lines around it

    proc = subprocess.run(
        [sys.executable, "-m", "airflow_agent_provider.cli.main", "validate", str(folder / "workflows")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("unknown field 'modle'") == 500


def test_many_broken_files_stay_within_the_message_bound_and_are_all_named(tmp_path):
    from airflow_agent_provider.definitions import WorkflowDefinitionError, load_workflow

    errors = []
    for index in range(60):
        path = tmp_path / f"broken_{index:02d}.yaml"
        path.write_text(_many_problems(f"broken_{index}", 40))
        with pytest.raises(WorkflowDefinitionError) as info:
            load_workflow(path)
        errors.append(info.value)
    message = import_error_message(errors, tmp_path)
    assert len(message) <= MAX_MESSAGE_CHARS + 500
    assert message.startswith(f"60 workflow definition file(s) in {tmp_path} could not be loaded")
    assert "broken_00.yaml: 40 problems" in message
    assert "broken_59.yaml" in message  # named, even when its problems no longer fit
    assert f"airflow-agents validate {tmp_path}" in message


def test_a_few_problems_are_shown_in_full(tmp_path):
    from airflow_agent_provider.definitions import WorkflowDefinitionError, load_workflow

    path = tmp_path / "few.yaml"
    path.write_text(_many_problems("few", 3))
    with pytest.raises(WorkflowDefinitionError) as info:
        load_workflow(path)
    message = import_error_message([info.value], tmp_path)
    assert message.count("unknown field 'modle'") == 3
    assert "more problem" not in message


_CLASH = """name: clash
schedule: null
params:
  rows: {type: array, default: [1]}
defaults: {provider: openai, model: gpt-5-mini}
modules:
  M:
    agents:
      - {name: a, for_each: params.rows, prompt: "row {{ item }}"}
      - {name: a__items, prompt: hi}
"""


def test_a_workflow_that_fails_to_build_stays_confined_to_its_file(tmp_path, monkeypatch):
    """Valid YAML that the factory cannot turn into a DAG (a task id clash): an import error naming the file."""
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path / "dags"
    (folder / "workflows").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "erp_workflows.py", folder / "erp_workflows.py")
    shutil.copy(REPO / "dags" / "workflows" / "quickstart.yaml", folder / "workflows" / "quickstart.yaml")
    (folder / "workflows" / "clash.yaml").write_text(_CLASH)
    for dag_id, expected in ((None, ["quickstart"]), ("clash", []), ("quickstart", ["quickstart"])):
        if dag_id is None:
            monkeypatch.delenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", raising=False)
        else:
            monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", dag_id)
        bag = DagBag(dag_folder=str(folder))
        assert sorted(bag.dag_ids) == expected, dag_id
        if dag_id == "quickstart":
            assert bag.import_errors == {}
        else:
            ((_, message),) = bag.import_errors.items()
            assert "clash.yaml" in message
            assert "could not build the DAG" in message
            assert "a__items" in message
