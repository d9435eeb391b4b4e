"""Load workflow files into validated :class:`Workflow` objects.

Loading runs in three stages and keeps going after a failing one where it can: YAML (syntax and
duplicate keys), the models (fields and values), then whole-workflow checks. All problems of a file
end up in one :class:`WorkflowDefinitionError`. ``load_workflows`` loads a folder file by file, so
one broken file never hides the others from the DAG processor.
"""

from __future__ import annotations

import difflib
from os import PathLike
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from airflow_agent_provider.definitions.errors import Problem, WorkflowDefinitionError
from airflow_agent_provider.definitions.models import Workflow
from airflow_agent_provider.definitions.pydantic_errors import problems_from_validation_error
from airflow_agent_provider.definitions.validation import check_workflow
from airflow_agent_provider.definitions.yaml_loader import parse_yaml

WORKFLOW_SUFFIXES = (".yaml", ".yml")


def load_workflow(path: str | PathLike[str]) -> Workflow:
    """
    Read, validate and return the workflow in ``path``.

    :raises WorkflowDefinitionError: listing every problem found in the file.
    """
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowDefinitionError(file_path, [Problem("(file)", f"cannot read the file: {exc}")]) from None
    return parse_workflow(text, source=file_path)


def parse_workflow(text: str, source: str | PathLike[str] | None = None) -> Workflow:
    """
    Validate a workflow given as YAML text; ``source`` names it in errors and as ``source_path``.

    :raises WorkflowDefinitionError: listing every problem found.
    """
    parsed = parse_yaml(text)
    problems = list(parsed.problems)
    workflow = None
    if not problems or parsed.data is not None:
        top_level = _top_level_problem(parsed.data)
        if top_level is not None:
            problems.append(top_level)
        else:
            try:
                workflow = Workflow.model_validate(parsed.data)
            except ValidationError as exc:
                problems.extend(problems_from_validation_error(exc, Workflow, parsed.line_of))
            else:
                problems.extend(check_workflow(workflow, parsed.line_of))
    if problems or workflow is None:
        raise WorkflowDefinitionError(source, _in_line_order(problems))
    workflow._source_path = Path(source) if source is not None else None
    return workflow


def load_workflows(folder: str | PathLike[str]) -> tuple[list[Workflow], list[WorkflowDefinitionError]]:
    """
    Load every ``*.yaml``/``*.yml`` file of ``folder`` (not recursive), in sorted order.

    Returns the good workflows and one error per bad file. A workflow ``name`` already used by an
    earlier file is an error for the later file, because both would become the same ``dag_id``.
    ``triggered_by`` must name workflows loaded from the same folder, without a trigger cycle (each
    run would start the next one forever); a workflow that fails this is an error for its file.
    """
    workflows: list[Workflow] = []
    errors: list[WorkflowDefinitionError] = []
    first_file: dict[str, Path] = {}
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix in WORKFLOW_SUFFIXES)
    for file_path in files:
        try:
            workflow = load_workflow(file_path)
        except WorkflowDefinitionError as exc:
            errors.append(exc)
            continue
        if workflow.name in first_file:
            message = f"workflow name {workflow.name!r} is already used by {first_file[workflow.name]}"
            errors.append(WorkflowDefinitionError(file_path, [Problem("name", message, _name_line(file_path))]))
            continue
        first_file[workflow.name] = file_path
        workflows.append(workflow)
    bad_triggers = _trigger_problems(workflows)
    for workflow in workflows:
        if workflow.name in bad_triggers:
            path = first_file[workflow.name]
            errors.append(WorkflowDefinitionError(path, bad_triggers[workflow.name]))
    return [w for w in workflows if w.name not in bad_triggers], errors


def _trigger_problems(workflows: list[Workflow]) -> dict[str, list[Problem]]:
    """Per workflow name, the problems of its ``triggered_by`` that need the other files of the folder."""
    by_name = {workflow.name: workflow for workflow in workflows}
    problems: dict[str, list[Problem]] = {}
    for workflow in workflows:
        lines = _lines(workflow)
        for index, upstream in enumerate(workflow.triggered_by):
            if upstream in by_name:
                continue
            message = f"unknown workflow {upstream!r}: triggered_by names workflows loaded from the same folder"
            close = difflib.get_close_matches(upstream, list(by_name), n=1, cutoff=0.6)
            if close:
                message += f"; did you mean {close[0]!r}?"
            message += f" (loaded: {', '.join(sorted(by_name))}; a file with errors is not loaded)"
            problems.setdefault(workflow.name, []).append(
                Problem(f"triggered_by[{index}]", message, lines.get(("triggered_by", index)))
            )
    for cycle in _trigger_cycles(by_name):
        shown = " -> ".join([*cycle, cycle[0]])
        for name in cycle:
            message = f"trigger cycle: {shown} (each workflow is triggered by the previous one, so runs never stop)"
            line = _lines(by_name[name]).get(("triggered_by",))
            problems.setdefault(name, []).append(Problem("triggered_by", message, line))
    return problems


def _trigger_cycles(by_name: dict[str, Workflow]) -> list[list[str]]:
    """Cycles in "A is triggered by B", each listed once in the order the runs would follow."""
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for start in by_name:
        path = [start]
        # Depth-first over "start finishes -> who runs next"; workflow folders are small.
        stack = [(start, iter(_triggered_next(by_name, start)))]
        while stack:
            following = stack[-1][1]
            target = next(following, None)
            if target is None:
                stack.pop()
                path.pop()
            elif target == start:
                key = frozenset(path)
                if key not in seen:
                    seen.add(key)
                    cycles.append(list(path))
            elif target not in path:
                path.append(target)
                stack.append((target, iter(_triggered_next(by_name, target))))
    return cycles


def _triggered_next(by_name: dict[str, Workflow], name: str) -> list[str]:
    return [other.name for other in by_name.values() if name in other.triggered_by]


def _lines(workflow: Workflow) -> dict[tuple[str | int, ...], int]:
    if workflow.source_path is None:
        return {}
    return parse_yaml(workflow.source_path.read_text(encoding="utf-8")).lines


def _top_level_problem(data: Any) -> Problem | None:
    if data is None:
        return Problem("(file)", "the file is empty; a workflow needs at least 'name' and 'modules'")
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        return Problem("(top level)", f"the top level must be a mapping (name: ..., modules: ...), got {kind}", 1)
    return None


def _in_line_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0))


def _name_line(file_path: Path) -> int | None:
    return parse_yaml(file_path.read_text(encoding="utf-8")).lines.get(("name",))
