"""
Load the workflow definitions of a folder as DAGs, for a DAG file in the dags folder.

Usage in a DAG file (this is all of ``dags/erp_workflows.py``)::

    from pathlib import Path
    from airflow_agent_provider.factory import load_workflow_dags

    globals().update(load_workflow_dags(Path(__file__).parent / "workflows"))

**Only what is asked.** Airflow parses the DAG file again at every task start (on the worker, and on
resume after a deferral). It then says which DAG it wants through the parsing context
(``airflow.sdk.get_parsing_context().dag_id``); the dag-processor sets none. With a DAG id, only the
file that defines that workflow is validated and built: the file is found from the workflow ``name``
of each file, read cheaply from its top-level ``name:`` line (the YAML is parsed only when that line
is not a plain name), so the file name does not have to match the workflow name, and two files with
one name resolve as in the dag-processor (the first in load order that validates). A DAG id that is
not one of this folder's workflows builds nothing. Without a parsing context every file is loaded.

**Broken files.** A broken definition must not take the other workflows down with it, and must still
be visible where Airflow users look for broken DAGs. Airflow records an import error for a DAG file
when one of the DAGs it defines fails ``DAG.validate()`` while the file's other DAGs are still
loaded. So each good definition becomes its DAG, and all broken ones are reported together through
one placeholder DAG whose validation fails with their errors (file, field path, reason): the UI's and
``airflow dags list-import-errors``' import error for the DAG file lists exactly the broken
definitions, and the placeholder itself is never registered. The message is bounded (at most
:data:`MAX_PROBLEMS_PER_FILE` problems per file and about :data:`MAX_MESSAGE_CHARS` characters in
all); ``airflow-agents validate <folder>`` prints every problem.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Collection, Iterator
from pathlib import Path

from airflow.sdk import DAG, get_parsing_context

from airflow_agent_provider._gc import collector_paused
from airflow_agent_provider.definitions import (
    Problem,
    Workflow,
    WorkflowDefinitionError,
    load_workflow,
    load_workflows,
)
from airflow_agent_provider.definitions.loader import WORKFLOW_SUFFIXES
from airflow_agent_provider.exceptions import InvalidWorkflowDefinitions as InvalidWorkflowDefinitions
from airflow_agent_provider.factory.builder import build_dag

log = logging.getLogger(__name__)

INVALID_PLACEHOLDER_DAG_ID = "__invalid_agent_workflow_definitions__"

#: Problems of one file listed in the import error; the rest are counted.
MAX_PROBLEMS_PER_FILE = 20
#: Rough bound of the whole import error message (a few KB, however many files and problems).
MAX_MESSAGE_CHARS = 8_000
#: Longest single problem line in the import error.
MAX_PROBLEM_CHARS = 300

# A top-level ``name:`` line with a plain (or simply quoted) value and an optional comment.
_NAME_LINE = re.compile(r"^name:[ \t]*(?P<value>[^\n#]*?)[ \t]*(?:#[^\n]*)?$", re.MULTILINE)
_PRODUCES_LINE = re.compile(r"^produces:[ \t]*(?P<value>[^\n#]*?)[ \t]*(?:#[^\n]*)?$", re.MULTILINE)
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_PLAIN_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[!-~]+$")


class _InvalidDefinitionsDag(DAG):
    """Never runs: exists only so that DagBag records the definition errors as an import error."""

    def validate(self) -> None:
        raise InvalidWorkflowDefinitions(self.doc_md)


# -------------------------------------------------------------------------------------------------
# The import error message
# -------------------------------------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _where(error: WorkflowDefinitionError, folder: Path) -> str:
    """The file, relative to the workflow folder when it is in it (the folder is named once)."""
    if error.path is None:
        return "<workflow>"
    path = Path(error.path)
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def _file_report(error: WorkflowDefinitionError, folder: Path, max_problems: int) -> str:
    """One file's part of the import error: its first ``max_problems`` problems and a count of the rest."""
    problems = error.problems
    count = len(problems)
    header = f"{_where(error, folder)}: {count} problem{'s' if count != 1 else ''} in workflow definition"
    if max_problems == 0:
        return header + " (not listed here)"
    lines = [
        header,
        *(f"  - {_clip(str(problem), MAX_PROBLEM_CHARS)}" for problem in problems[:max_problems]),
    ]
    if count > max_problems:
        more = count - max_problems
        lines.append(
            f"  … and {more} more problem{'s' if more != 1 else ''}; "
            f"run `airflow-agents validate {folder}` for all of them"
        )
    return "\n".join(lines)


def import_error_message(errors: list[WorkflowDefinitionError], folder: str | os.PathLike[str]) -> str:
    """
    The text of the import error for ``errors``, within about :data:`MAX_MESSAGE_CHARS` characters.

    Every broken file gets at most :data:`MAX_PROBLEMS_PER_FILE` of its problems; when many files are
    broken, each gets an equal share of the bound (fewer problems, then only its name and count), and
    files that do not fit even so are named on one line. ``airflow-agents validate`` prints them all.
    """
    folder = Path(folder)
    header = f"{len(errors)} workflow definition file(s) in {folder} could not be loaded:"
    parts: list[str] = []
    used = len(header)
    for index, error in enumerate(errors):
        budget = (MAX_MESSAGE_CHARS - used) // (len(errors) - index)
        for max_problems in (MAX_PROBLEMS_PER_FILE, 5, 1, 0):
            part = _file_report(error, folder, max_problems)
            if len(part) <= budget:
                break
        else:
            rest = [_where(e, folder) for e in errors[index:]]
            line = f"… and {len(rest)} more broken file(s): {', '.join(rest)}"
            tail = f"; run `airflow-agents validate {folder}` for all of them"
            parts.append(_clip(line, max(MAX_MESSAGE_CHARS - used - len(tail), 200)) + tail)
            break
        parts.append(part)
        used += len(part) + 2
    return header + "\n\n" + "\n\n".join(parts)


def _placeholder(errors: list[WorkflowDefinitionError], folder: Path) -> DAG:
    return _InvalidDefinitionsDag(
        dag_id=INVALID_PLACEHOLDER_DAG_ID, schedule=None, doc_md=import_error_message(errors, folder)
    )


# -------------------------------------------------------------------------------------------------
# Finding one workflow's file cheaply
# -------------------------------------------------------------------------------------------------


def _workflow_files(folder: Path) -> list[Path]:
    """The files ``load_workflows`` reads, in its order (a later file with a used name is an error)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WORKFLOW_SUFFIXES)


def _plain_value(match: re.Match[str] | None, pattern: re.Pattern[str]) -> str | None:
    """The line's value when it is a plain scalar matching ``pattern`` (quotes allowed), else None."""
    if match is None:
        return None
    value = match.group("value")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value if pattern.match(value) else None


def _yaml_top_level(path: Path, key: str) -> str | None:
    """``key`` of the file's top-level mapping through the YAML composer (no objects are built)."""
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        loader = loader_class(path.read_text(encoding="utf-8"))
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except Exception:  # unreadable or not YAML: the file's own load reports it
        return None
    if not isinstance(node, yaml.MappingNode):
        return None
    values = [value for k, value in node.value if isinstance(k, yaml.ScalarNode) and k.value == key]
    # Twice is a duplicate key: the file is invalid, whatever it declares.
    if len(values) == 1 and isinstance(values[0], yaml.ScalarNode):
        value: str = values[0].value  # a scalar node's value is its text
        return value
    return None


def declared_name(path: Path) -> str | None:
    """
    The workflow ``name`` a file declares, read from its top-level ``name:`` line; the YAML is
    parsed only when there is no such line with a plain value (anchors, block scalars, flow style).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    matches = list(_NAME_LINE.finditer(text))
    if len(matches) == 1:
        value = _plain_value(matches[0], _PLAIN_NAME)
        if value is not None:
            return value
    return _yaml_top_level(path, "name")


def _declared_produces(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    matches = list(_PRODUCES_LINE.finditer(text))
    if not matches:
        return None
    if len(matches) == 1 and (value := _plain_value(matches[0], _PLAIN_URI)) is not None:
        return value
    return _yaml_top_level(path, "produces")


def _files_declaring(files: list[Path], name: str) -> Iterator[Path]:
    """
    The files that declare workflow ``name``, lazily and in load order (the first of them that
    validates is the one ``load_workflows`` keeps). Reading a file's name is a regex over its text,
    so the scan costs far less than validating the one file it finds, whatever the files are called.
    """
    for path in files:
        if declared_name(path) == name:
            yield path


def _produces_of(files: list[Path], names: list[str]) -> dict[str, str]:
    """``produces`` of the named workflows (the producers of a ``triggered_by``), read cheaply."""
    produces: dict[str, str] = {}
    for name in names:
        path = next(_files_declaring(files, name), None)
        value = _declared_produces(path) if path is not None else None
        if value:
            produces[name] = value
    return produces


# -------------------------------------------------------------------------------------------------
# Loading
# -------------------------------------------------------------------------------------------------


def _build(
    workflow: Workflow,
    produces: dict[str, str],
    folder: Path,
    dags: dict[str, DAG],
    errors: list[WorkflowDefinitionError],
) -> None:
    try:
        dags[workflow.name] = build_dag(workflow, produces)
    except Exception as exc:  # a factory bug must also stay confined to its workflow
        source = workflow.source_path or folder
        log.exception("Could not build a DAG from %s", source)
        errors.append(WorkflowDefinitionError(source, [Problem("(file)", f"could not build the DAG: {exc}")]))


def _finish(dags: dict[str, DAG], errors: list[WorkflowDefinitionError], folder: Path) -> dict[str, DAG]:
    for error in errors:
        log.error("%s", _file_report(error, folder, MAX_PROBLEMS_PER_FILE))
    if errors:
        dags[INVALID_PLACEHOLDER_DAG_ID] = _placeholder(errors, folder)
    return dags


def _load_all(folder: Path) -> dict[str, DAG]:
    workflows, errors = load_workflows(folder)
    dags: dict[str, DAG] = {}
    # triggered_by names a workflow of the same folder; its asset may be a custom ``produces``.
    produces = {w.name: w.produces for w in workflows if w.produces}
    for workflow in workflows:
        _build(workflow, produces, folder, dags, errors)
    return _finish(dags, errors, folder)


def _load_one(folder: Path, dag_id: str) -> dict[str, DAG]:
    """
    Only the workflow ``dag_id``: the first file declaring it that validates, as ``load_workflows``
    would pick it. Checks that need the whole folder (``triggered_by`` names and cycles) are left to
    the dag-processor: a workflow failing them has no DAG in Airflow, so none of its tasks runs here.
    """
    if dag_id == INVALID_PLACEHOLDER_DAG_ID:
        return {}
    files = _workflow_files(folder)
    errors: list[WorkflowDefinitionError] = []
    for path in _files_declaring(files, dag_id):
        try:
            workflow = load_workflow(path)
        except WorkflowDefinitionError as exc:
            errors.append(exc)
            continue
        except Exception as exc:  # whatever a file does, it stays confined to that file
            errors.append(
                WorkflowDefinitionError(
                    path, [Problem("(file)", f"cannot load: {type(exc).__name__}: {exc}")]
                )
            )
            continue
        if workflow.name != dag_id:  # the name line misled us (unusual YAML): load as the dag-processor does
            log.warning(
                "%s declares workflow %r, not %r; loading the whole folder", path, workflow.name, dag_id
            )
            return {k: v for k, v in _load_all(folder).items() if k in (dag_id, INVALID_PLACEHOLDER_DAG_ID)}
        dags: dict[str, DAG] = {}
        _build(workflow, _produces_of(files, list(workflow.triggered_by)), folder, dags, errors)
        return _finish(dags, [] if dags else errors, folder)
    return _finish({}, errors, folder)


def load_workflow_dags(
    folder: str | os.PathLike[str], *, only: Collection[str] | None = None
) -> dict[str, DAG]:
    """
    Build one DAG per valid definition in ``folder`` (only the requested one when Airflow parses
    the file to run a task of it) and report the invalid ones (see the module docstring).

    ``only``: the workflows a dag-processor parse for callbacks needs
    (:mod:`airflow_agent_provider.factory.callback_parse`); such a parse has no parsing context.

    Returns a mapping suitable for ``globals().update(...)`` in a DAG file.
    """
    folder = Path(folder)
    dag_id = get_parsing_context().dag_id
    with collector_paused():  # see airflow_agent_provider._gc
        if only is not None:
            dags: dict[str, DAG] = {}
            for wanted in sorted(only):
                dags.update(_load_one(folder, wanted))
            return dags
        if dag_id:
            return _load_one(folder, dag_id)
        return _load_all(folder)
