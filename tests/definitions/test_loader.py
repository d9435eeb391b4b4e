"""Loading folders and files: good and bad files side by side, errors that name the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_agent_provider.definitions import (
    Problem,
    WorkflowDefinitionError,
    load_workflow,
    load_workflows,
    parse_workflow,
)

HERE = Path(__file__).parent
EXAMPLES = HERE.parents[1] / "dags" / "workflows"

MINIMAL = """\
name: {name}
modules:
  Finance:
    agents:
      - name: a
        model: gpt-5-mini
        prompt: Say hello.
"""


def test_folder_with_good_and_bad_files_returns_both(tmp_path: Path):
    shutil.copy(EXAMPLES / "quickstart.yaml", tmp_path / "a_quickstart.yaml")
    shutil.copy(HERE / "bad" / "cycle.yaml", tmp_path / "b_cycle.yaml")
    (tmp_path / "c_small.yml").write_text(MINIMAL.format(name="small"))
    (tmp_path / "d_empty.yaml").write_text("")
    (tmp_path / "notes.txt").write_text("not a workflow")

    workflows, errors = load_workflows(tmp_path)

    assert [w.name for w in workflows] == ["quickstart", "small"]
    assert [Path(e.path).name for e in errors] == ["b_cycle.yaml", "d_empty.yaml"]
    assert workflows[1].source_path == tmp_path / "c_small.yml"


def test_duplicate_workflow_name_is_an_error_for_the_second_file(tmp_path: Path):
    (tmp_path / "one.yaml").write_text(MINIMAL.format(name="same"))
    (tmp_path / "two.yaml").write_text(MINIMAL.format(name="same"))

    workflows, errors = load_workflows(tmp_path)

    assert [w.source_path.name for w in workflows] == ["one.yaml"]
    assert len(errors) == 1
    text = str(errors[0])
    assert text.startswith(str(tmp_path / "two.yaml"))
    assert "name: workflow name 'same' is already used by" in text
    assert errors[0].problems[0].line == 1


def test_unreadable_file_is_reported_not_raised(tmp_path: Path):
    with pytest.raises(WorkflowDefinitionError) as info:
        load_workflow(tmp_path / "missing.yaml")
    assert "cannot read the file" in str(info.value)
    assert "missing.yaml" in str(info.value)


def test_yaml_tags_that_build_objects_are_refused():
    text = MINIMAL.format(name="evil") + "description: !!python/object/apply:os.system ['echo hacked']\n"
    with pytest.raises(WorkflowDefinitionError) as info:
        parse_workflow(text, source="inline.yaml")
    assert "inline.yaml" in str(info.value)
    assert "python/object/apply" in str(info.value)


def test_error_text_lists_every_problem_as_loc_and_reason():
    error = WorkflowDefinitionError(
        "wf.yaml", [Problem("modules.HR.agents[0].model", "bad", 7), Problem("line 3, column 1", "oops", 3)]
    )
    assert str(error).splitlines() == [
        "wf.yaml: 2 problems in workflow definition",
        "  - modules.HR.agents[0].model: bad (line 7)",
        "  - line 3, column 1: oops",
    ]


def test_parse_workflow_without_source_still_raises_with_problems():
    with pytest.raises(WorkflowDefinitionError) as info:
        parse_workflow("name: x\n")
    assert info.value.path is None
    assert [p.loc for p in info.value.problems] == ["modules"]


def test_alias_bombs_stop_while_composing():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
        for i in range(1, 9)
    ]
    with pytest.raises(WorkflowDefinitionError) as info:
        parse_workflow("\n".join(lines) + "\n")
    assert [p.loc for p in info.value.problems] == ["line 6, column 10"]
    assert "expands to more than 100,000 YAML nodes at alias *a4" in str(info.value)


def test_parse_workflow_records_its_source(tmp_path: Path):
    assert (
        parse_workflow(MINIMAL.format(name="src"), tmp_path / "src.yaml").source_path == tmp_path / "src.yaml"
    )
    assert parse_workflow(MINIMAL.format(name="src")).source_path is None
