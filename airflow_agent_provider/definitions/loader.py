"""
Load workflow files into validated :class:`Workflow` objects.

Loading runs in three stages and keeps going after a failing one where it can: YAML (syntax and
duplicate keys), the models (fields and values), then whole-workflow checks. All problems of a file
end up in one :class:`WorkflowDefinitionError`. ``load_workflows`` loads a folder file by file, so
one broken file never hides the others from the DAG processor: whatever a file does while it is
loaded (an oversized or undecodable file, YAML that expands without bound, a tool module that raises
anything at import, a RecursionError or MemoryError) becomes that file's definition error.

Input is bounded before it is parsed: a file larger than ``max_file_bytes`` (default
``[agent_provider] max_workflow_file_bytes``, 1 MiB) is not read past the cap, and the YAML itself is
bounded while it is composed (:mod:`.yaml_loader`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from airflow_agent_provider._suggest import did_you_mean
from airflow_agent_provider.config import MAX_WORKFLOW_FILE_BYTES_OPTION, ProviderConfigError, setting_name
from airflow_agent_provider.definitions.code_refs import describe, must_propagate
from airflow_agent_provider.definitions.errors import Problem, WorkflowDefinitionError
from airflow_agent_provider.definitions.models import Workflow
from airflow_agent_provider.definitions.pydantic_errors import problems_from_validation_error
from airflow_agent_provider.definitions.validation import check_workflow
from airflow_agent_provider.definitions.yaml_loader import parse_yaml

WORKFLOW_SUFFIXES = (".yaml", ".yml")
log = logging.getLogger(__name__)


def load_workflow(
    path: str | PathLike[str],
    *,
    allowed_modules: Iterable[str] | None = None,
    max_file_bytes: int | None = None,
) -> Workflow:
    """
    Read, validate and return the workflow in ``path``.

    :param allowed_modules: module prefixes tools and output schemas may come from; None reads
        ``[agent_provider] allowed_tool_modules`` when the file names code.
    :param max_file_bytes: largest file read; None reads ``[agent_provider] max_workflow_file_bytes``.
    :raises WorkflowDefinitionError: listing every problem found in the file. Nothing else: any other
        exception while loading it becomes a problem of the file.
    """
    file_path = Path(path)
    try:
        text = read_workflow_text(file_path, max_file_bytes)
        return parse_workflow(
            text, source=file_path, allowed_modules=allowed_modules, max_file_bytes=max_file_bytes
        )
    except WorkflowDefinitionError:
        raise
    except BaseException as exc:  # confined: one file's failure must not take the folder down
        if must_propagate(exc):
            raise
        raise _unexpected(file_path, exc) from None


def parse_workflow(
    text: str,
    source: str | PathLike[str] | None = None,
    *,
    allowed_modules: Iterable[str] | None = None,
    max_file_bytes: int | None = None,
) -> Workflow:
    """
    Validate a workflow given as YAML text; ``source`` names it in errors and as ``source_path``.

    ``allowed_modules`` and ``max_file_bytes`` as for :func:`load_workflow`.

    :raises WorkflowDefinitionError: listing every problem found.
    """
    try:
        return _parse_workflow(text, source, allowed_modules, max_file_bytes)
    except WorkflowDefinitionError:
        raise
    except BaseException as exc:  # e.g. a tool module raising at import: this source's problem
        if must_propagate(exc):
            raise
        raise _unexpected(source, exc) from None


def _parse_workflow(
    text: str,
    source: str | PathLike[str] | None,
    allowed_modules: Iterable[str] | None,
    max_file_bytes: int | None,
) -> Workflow:
    try:
        limit = _file_limit(max_file_bytes)
    except ProviderConfigError as exc:
        raise WorkflowDefinitionError(source, [Problem("(file)", str(exc))]) from None
    # The text is already in memory here; the cap keeps parsing and everything after it bounded.
    if len(text) > limit or (len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit):
        size = len(text) if len(text) > limit else len(text.encode("utf-8", "surrogatepass"))
        raise WorkflowDefinitionError(source, [_too_large(size, limit)])
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
                problems.extend(check_workflow(workflow, parsed.line_of, allowed_modules))
    if problems or workflow is None:
        raise WorkflowDefinitionError(source, _in_line_order(problems))
    workflow._source_path = Path(source) if source is not None else None
    return workflow


def load_workflows(
    folder: str | PathLike[str],
    *,
    allowed_modules: Iterable[str] | None = None,
    max_file_bytes: int | None = None,
) -> tuple[list[Workflow], list[WorkflowDefinitionError]]:
    """
    Load every ``*.yaml``/``*.yml`` file of ``folder`` (not recursive), in sorted order.

    Returns the good workflows and one error per bad file. A workflow ``name`` already used by an
    earlier file is an error for the later file, because both would become the same ``dag_id``.
    ``triggered_by`` must name workflows loaded from the same folder, without a trigger cycle (each
    run would start the next one forever); a workflow that fails this is an error for its file.
    ``allowed_modules`` and ``max_file_bytes`` as for :func:`load_workflow` (the settings are read once
    for the folder).
    """
    workflows: list[Workflow] = []
    errors: list[WorkflowDefinitionError] = []
    first_file: dict[str, Path] = {}
    allowed = _allowed_for_folder(allowed_modules)
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix in WORKFLOW_SUFFIXES)
    for file_path in files:
        try:
            workflow = load_workflow(file_path, allowed_modules=allowed, max_file_bytes=max_file_bytes)
        except WorkflowDefinitionError as exc:
            errors.append(exc)
            continue
        except BaseException as exc:  # load_workflow confines everything; this is the last net
            if must_propagate(exc):
                raise
            errors.append(_unexpected(file_path, exc))
            continue
        if workflow.name in first_file:
            message = f"workflow name {workflow.name!r} is already used by {first_file[workflow.name]}"
            errors.append(
                WorkflowDefinitionError(file_path, [Problem("name", message, _name_line(file_path))])
            )
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
        for index, upstream in enumerate(workflow.triggered_by):
            if upstream in by_name:
                continue
            message = (
                f"unknown workflow {upstream!r}: triggered_by names workflows loaded from the same folder"
            )
            message += did_you_mean(upstream, by_name)
            message += f" (loaded: {', '.join(sorted(by_name))}; a file with errors is not loaded)"
            problems.setdefault(workflow.name, []).append(
                # Line numbers need the file parsed again: only worth it when there is a problem to point at.
                Problem(f"triggered_by[{index}]", message, _lines(workflow).get(("triggered_by", index)))
            )
    for cycle in _trigger_cycles(by_name):
        shown = " -> ".join([*cycle, cycle[0]])
        for name in cycle:
            message = (
                f"trigger cycle: {shown} (each workflow is triggered by the previous one, so runs never stop)"
            )
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
    try:
        return parse_yaml(read_workflow_text(workflow.source_path, None)).lines
    except Exception:  # the file changed since it was loaded: report without lines
        return {}


def _top_level_problem(data: Any) -> Problem | None:
    if data is None:
        return Problem("(file)", "the file is empty; a workflow needs at least 'name' and 'modules'")
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        return Problem(
            "(top level)", f"the top level must be a mapping (name: ..., modules: ...), got {kind}", 1
        )
    return None


def _in_line_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0))


def _name_line(file_path: Path) -> int | None:
    try:
        return parse_yaml(read_workflow_text(file_path, None)).lines.get(("name",))
    except Exception:
        return None


def _allowed_for_folder(allowed_modules: Iterable[str] | None) -> tuple[str, ...] | None:
    """The allow-list read once for a whole folder; None (each file reports the bad setting) when invalid."""
    if allowed_modules is not None:
        return tuple(allowed_modules)
    from airflow_agent_provider.config import allowed_tool_modules

    try:
        return allowed_tool_modules()
    except ProviderConfigError:
        return None


def _file_limit(max_file_bytes: int | None) -> int:
    if max_file_bytes is not None:
        return max_file_bytes
    from airflow_agent_provider.config import max_workflow_file_bytes

    return max_workflow_file_bytes()


def _too_large(size: int, limit: int) -> Problem:
    return Problem(
        "(file)",
        f"the file is {size:,} bytes, more than the {limit:,} a workflow file may have "
        f"({setting_name(MAX_WORKFLOW_FILE_BYTES_OPTION)}); it was not parsed",
    )


def read_workflow_text(file_path: Path, max_file_bytes: int | None = None) -> str:
    """
    The text of a workflow file, read only up to the cap (``max_file_bytes``, default
    ``[agent_provider] max_workflow_file_bytes``), plus one byte to tell that it is larger.

    :raises WorkflowDefinitionError: the file is too large, unreadable or not UTF-8 (one problem).
    """
    try:
        limit = _file_limit(max_file_bytes)
    except ProviderConfigError as exc:
        raise WorkflowDefinitionError(file_path, [Problem("(file)", str(exc))]) from None
    try:
        size = file_path.stat().st_size
        if size > limit:
            raise WorkflowDefinitionError(file_path, [_too_large(size, limit)])
        with file_path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise WorkflowDefinitionError(
            file_path, [Problem("(file)", f"cannot read the file: {exc}")]
        ) from None
    if len(data) > limit:  # grew since stat
        raise WorkflowDefinitionError(file_path, [_too_large(len(data), limit)])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorkflowDefinitionError(
            file_path,
            [
                Problem(
                    "(file)", f"cannot read the file: it is not UTF-8 text ({exc.reason} at byte {exc.start})"
                )
            ],
        ) from None


def _unexpected(file_path: str | PathLike[str] | None, exc: BaseException) -> WorkflowDefinitionError:
    log.warning(
        "Unexpected error while loading %s",
        file_path or "<workflow>",
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    message = f"could not load the file: {describe(exc)}"
    return WorkflowDefinitionError(file_path, [Problem("(file)", message)])
