"""Load every workflow definition of a folder as DAGs, for a DAG file in the dags folder.

Usage in a DAG file (this is all of ``dags/erp_workflows.py``)::

    from pathlib import Path
    from airflow_agent_provider.factory import load_workflow_dags

    globals().update(load_workflow_dags(Path(__file__).parent / "workflows"))

A broken definition must not take the other workflows down with it, and must still be visible where
Airflow users look for broken DAGs. Airflow records an import error for a DAG file when one of the
DAGs it defines fails ``DAG.validate()`` while the file's other DAGs are still loaded. So each
good definition becomes its DAG, and all broken ones are reported together through one placeholder
DAG whose validation fails with their errors (file, field path, reason): the UI's and
``airflow dags list-import-errors``' import error for the DAG file lists exactly the broken
definitions, and the placeholder itself is never registered.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from airflow.sdk import DAG

from airflow_agent_provider.definitions import (
    Problem,
    WorkflowDefinitionError,
    load_workflows,
)
from airflow_agent_provider.factory.builder import build_dag

log = logging.getLogger(__name__)

INVALID_PLACEHOLDER_DAG_ID = "__invalid_agent_workflow_definitions__"


class InvalidWorkflowDefinitions(ValueError):
    """Raised (through the placeholder DAG's validation) to report broken definition files."""


class _InvalidDefinitionsDag(DAG):
    """Never runs: exists only so that DagBag records the definition errors as an import error."""

    def validate(self) -> None:
        raise InvalidWorkflowDefinitions(self.doc_md)


def _placeholder(errors: list[WorkflowDefinitionError]) -> DAG:
    message = f"{len(errors)} workflow definition file(s) could not be loaded:\n\n" + "\n\n".join(
        str(e) for e in errors
    )
    return _InvalidDefinitionsDag(dag_id=INVALID_PLACEHOLDER_DAG_ID, schedule=None, doc_md=message)


def load_workflow_dags(folder: str | os.PathLike[str]) -> dict[str, DAG]:
    """
    Build one DAG per valid definition in ``folder``; report the invalid ones (see module docstring).

    Returns a mapping suitable for ``globals().update(...)`` in a DAG file.
    """
    workflows, errors = load_workflows(Path(folder))
    dags: dict[str, DAG] = {}
    # triggered_by names a workflow of the same folder; its asset may be a custom ``produces``.
    produces = {w.name: w.produces for w in workflows if w.produces}
    for workflow in workflows:
        try:
            dags[workflow.name] = build_dag(workflow, produces)
        except Exception as exc:  # a factory bug must also stay confined to its workflow
            source = workflow.source_path or Path(folder)
            log.exception("Could not build a DAG from %s", source)
            errors.append(
                WorkflowDefinitionError(source, [Problem("(file)", f"could not build the DAG: {exc}")])
            )
    for error in errors:
        log.error("%s", error)
    if errors:
        dags[INVALID_PLACEHOLDER_DAG_ID] = _placeholder(errors)
    return dags
